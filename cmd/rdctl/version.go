package main

import (
	"context"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v3"
)

// Set at link time by the release build (scripts/release):
//
//	-X main.Version=1.2.3 -X main.Commit=<sha> -X main.BuildDate=2026-01-02T03:04:05Z
//
// A build without them (go build, go install) takes what debug.BuildInfo
// has: the module version, and the VCS stamp when the build had one.
var Version, Commit, BuildDate string

// buildInfo is what `rdctl version` reports.
type buildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"build_date"`
	Go        string `json:"go"`
	Platform  string `json:"platform"`
}

// readBuildInfo is debug.ReadBuildInfo, replaced by tests.
var readBuildInfo = debug.ReadBuildInfo

func currentBuild() buildInfo {
	b := buildInfo{Version: Version, Commit: Commit, BuildDate: BuildDate,
		Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := readBuildInfo()
	if ok {
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Commit == "" {
					b.Commit = s.Value
				}
			case "vcs.time":
				if b.BuildDate == "" {
					b.BuildDate = s.Value // the commit's time: the best a plain build knows
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && Commit == "" && b.Commit != "" {
			b.Commit += "-dirty"
		}
		if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			b.Go = bi.GoVersion
		}
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	if b.BuildDate == "" {
		b.BuildDate = "unknown"
	}
	return b
}

func version() string { return currentBuild().Version }

func versionCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "version",
		Usage:       "print rdctl's version, commit, build date and Go version",
		Description: helpText("version"),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			b := currentBuild()
			if e.json {
				return writeJSON(e.stdout, b)
			}
			e.printf("rdctl %s\ncommit:   %s\nbuilt:    %s\ngo:       %s\nplatform: %s\n", b.Version, b.Commit, b.BuildDate, b.Go, b.Platform)
			return nil
		},
	}
}
