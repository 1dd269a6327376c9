package exporter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/probe"
	"github.com/rdctl/rdctl/internal/safefs"
	"github.com/rdctl/rdctl/internal/textsafe"
)

// DefaultModule is the module a probe request without module= gets, and
// the one that exists without a config file.
const DefaultModule = "default"

// DefaultTimeout bounds one probe request (all of a target's probes, which
// run at the same time) when the module sets no timeout. Prometheus's
// default scrape timeout is 10 s; the scrape's own timeout lowers it.
const DefaultTimeout = 5 * time.Second

// MaxTimeout bounds a module's timeout: a scrape longer than a minute is a
// mistake, and it would hold a probe slot that long.
const MaxTimeout = time.Minute

// MaxConfigSize bounds the config file rdctl reads.
const MaxConfigSize = 1 << 20

// maxModules bounds the modules of one config.
const maxModules = 1000

// Module is one way of probing a target, named in the probe request.
type Module struct {
	Name string
	// Probes to run; nil means all.
	Probes []probe.Name
	// Key is the public key the server should serve ("" = none known).
	Key string
	// KeySource says where Key came from, for the log ("" = none).
	KeySource string
	// Timeout bounds the whole probe request.
	Timeout time.Duration
	// Tailnet dials every target through the local tailscaled.
	Tailnet bool
	// Strict also presents a wrong key (match vs unenforced).
	Strict bool
}

// Config is the exporter's modules.
type Config struct {
	Modules map[string]*Module
}

// ConfigError is a problem with the config file, at Line (0 = the file as
// a whole).
type ConfigError struct {
	File string
	Line int
	Msg  string
}

func (e *ConfigError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

var moduleName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`) })

// DefaultConfig is the configuration without a file: the default module,
// every probe, expecting key (which may be "").
func DefaultConfig(key, keySource string) *Config {
	return &Config{Modules: map[string]*Module{
		DefaultModule: {Name: DefaultModule, Key: key, KeySource: keySource, Timeout: DefaultTimeout},
	}}
}

// LoadConfig reads and validates the config file at path. Key files it
// names are read relative to the config file's directory.
func LoadConfig(path string) (*Config, error) {
	d, err := safefs.OpenDir(filepath.Dir(path))
	if err != nil {
		return nil, &ConfigError{File: path, Msg: err.Error()}
	}
	defer d.Close()
	data, _, err := d.ReadFile(filepath.Base(path), MaxConfigSize)
	if err != nil {
		return nil, &ConfigError{File: path, Msg: err.Error()}
	}
	dir := filepath.Dir(path)
	return ParseConfig(path, data, func(name string) (string, error) {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		return LoadKeyFile(name)
	})
}

// LoadKeyFile reads the public key from a public key file (*.pub, such as
// id_ed25519.pub), bounded; a secret key file is refused, by its name and
// by its content.
func LoadKeyFile(path string) (string, error) {
	if err := keyFileName(path); err != nil {
		return "", err
	}
	b, err := readKeyFile(path)
	if err != nil {
		return "", err
	}
	return PublicKeyFile(b)
}

func keyFileName(path string) error {
	if filepath.Base(path) == keys.SecretFile || !strings.HasSuffix(path, ".pub") {
		return fmt.Errorf("must be a public key file (*.pub), never the secret %s", keys.SecretFile)
	}
	return nil
}

// readKeyFile reads a key file as rdctl reads every file another user
// may control: no symlink followed, a named pipe never waited on, one
// link, at most keys.MaxFileSize bytes.
func readKeyFile(path string) ([]byte, error) {
	d, err := safefs.OpenDir(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	b, _, err := d.ReadUntrusted(filepath.Base(path), keys.MaxFileSize)
	return b, err
}

// ParseConfig parses a config (YAML) named file for its errors. readKey
// reads a key_file entry; nil refuses key_file. The format:
//
//	modules:
//	  NAME:
//	    probes: [nat-test, rendezvous-tcp, ...]   # default: all
//	    key: PUBLIC_KEY                           # or key_file: PATH.pub
//	    timeout: 5s
//	    tailnet: false
//	    strict: false
//
// Every error names its line.
func ParseConfig(file string, data []byte, readKey func(string) (string, error)) (*Config, error) {
	bad := func(n *yaml.Node, format string, a ...any) error {
		line := 0
		if n != nil {
			line = n.Line
		}
		return &ConfigError{File: file, Line: line, Msg: fmt.Sprintf(format, a...)}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, bad(nil, "empty: it must have a modules: mapping")
		}
		return nil, yamlError(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, bad(&extra, "more than one YAML document")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, bad(root, "the top level must be a mapping with modules:")
	}
	cfg := &Config{Modules: map[string]*Module{}}
	var modules *yaml.Node
	for i := 0; i < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "modules":
			modules = v
		default:
			return nil, bad(k, "unknown key %s (want modules)", clip(k.Value))
		}
	}
	if modules == nil {
		return nil, bad(root, "no modules: mapping")
	}
	if modules.Kind != yaml.MappingNode {
		return nil, bad(modules, "modules must be a mapping of module names")
	}
	if len(modules.Content) == 0 {
		return nil, bad(modules, "no module defined")
	}
	if len(modules.Content)/2 > maxModules {
		return nil, bad(modules, "more than %d modules", maxModules)
	}
	for i := 0; i < len(modules.Content); i += 2 {
		k, v := modules.Content[i], modules.Content[i+1]
		if k.Kind != yaml.ScalarNode || !moduleName().MatchString(k.Value) {
			return nil, bad(k, "module name %s: use letters, digits, _ . - (at most 64)", clip(k.Value))
		}
		if _, dup := cfg.Modules[k.Value]; dup {
			return nil, bad(k, "module %q defined twice", k.Value)
		}
		m, err := parseModule(k.Value, v, bad, readKey)
		if err != nil {
			return nil, err
		}
		cfg.Modules[k.Value] = m
	}
	return cfg, nil
}

func parseModule(name string, v *yaml.Node, bad func(*yaml.Node, string, ...any) error, readKey func(string) (string, error)) (*Module, error) {
	m := &Module{Name: name, Timeout: DefaultTimeout}
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return m, nil // "name:" alone: the defaults
	}
	if v.Kind != yaml.MappingNode {
		return nil, bad(v, "module %q must be a mapping", name)
	}
	var keyNode, keyFileNode *yaml.Node
	seen := map[string]bool{}
	for i := 0; i < len(v.Content); i += 2 {
		k, f := v.Content[i], v.Content[i+1]
		if seen[k.Value] {
			return nil, bad(k, "module %q: %s given twice", name, clip(k.Value))
		}
		seen[k.Value] = true
		switch k.Value {
		case "probes":
			if f.Kind != yaml.SequenceNode {
				return nil, bad(f, "module %q: probes must be a list of probe names", name)
			}
			var list []string
			for _, p := range f.Content {
				if p.Kind != yaml.ScalarNode {
					return nil, bad(p, "module %q: probes must be a list of probe names", name)
				}
				list = append(list, p.Value)
			}
			ns, err := probe.ParseNames(strings.Join(list, ","))
			if err != nil {
				return nil, bad(f, "module %q: %v", name, err)
			}
			m.Probes = ns
		case "key":
			keyNode = f
		case "key_file":
			keyFileNode = f
		case "timeout":
			d, err := time.ParseDuration(scalar(f))
			if err != nil || f.Kind != yaml.ScalarNode {
				return nil, bad(f, "module %q: timeout %s: want a duration such as 5s", name, clip(scalar(f)))
			}
			if d <= 0 || d > MaxTimeout {
				return nil, bad(f, "module %q: timeout %s: want more than 0 and at most %s", name, d, MaxTimeout)
			}
			m.Timeout = d
		case "tailnet", "strict":
			var b bool
			if f.Kind != yaml.ScalarNode || f.Decode(&b) != nil {
				return nil, bad(f, "module %q: %s must be true or false", name, k.Value)
			}
			if k.Value == "tailnet" {
				m.Tailnet = b
			} else {
				m.Strict = b
			}
		default:
			return nil, bad(k, "module %q: unknown setting %s (want probes, key, key_file, timeout, tailnet, strict)", name, clip(k.Value))
		}
	}
	switch {
	case keyNode != nil && keyFileNode != nil:
		return nil, bad(keyFileNode, "module %q: key and key_file exclude each other", name)
	case keyNode != nil:
		key, _, err := keys.ParsePublicArg("key", scalar(keyNode))
		if err != nil || keyNode.Kind != yaml.ScalarNode {
			var ae *keys.ArgError
			if errors.As(err, &ae) {
				return nil, bad(keyNode, "module %q: %s", name, ae.Reason)
			}
			return nil, bad(keyNode, "module %q: key must be the public key", name)
		}
		m.Key, m.KeySource = key, "module "+name
	case keyFileNode != nil:
		path := scalar(keyFileNode)
		switch {
		case keyFileNode.Kind != yaml.ScalarNode || path == "":
			return nil, bad(keyFileNode, "module %q: key_file must be a path", name)
		case keyFileName(path) != nil:
			return nil, bad(keyFileNode, "module %q: key_file %v", name, keyFileName(path))
		case readKey == nil:
			return nil, bad(keyFileNode, "module %q: key_file is not read here", name)
		}
		key, err := readKey(path)
		if err != nil {
			return nil, bad(keyFileNode, "module %q: key_file %s: %v", name, clip(path), err)
		}
		m.Key, m.KeySource = key, path
	}
	return m, nil
}

// PublicKeyFile parses the content of a public key file (id_ed25519.pub):
// the key and at most a line break. A secret key is refused as such.
func PublicKeyFile(data []byte) (string, error) {
	key, _, err := keys.ParsePublicArg("key file", string(data))
	var ae *keys.ArgError
	switch {
	case errors.As(err, &ae) && ae.Secret:
		return "", errors.New("holds a secret key: give the public key file (id_ed25519.pub)")
	case errors.As(err, &ae):
		return "", errors.New(ae.Reason)
	case err != nil:
		return "", err
	}
	return key, nil
}

func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// clip renders what the file said for an error: a config line could hold
// anything, a secret key included (textsafe.Echo withholds it).
func clip(s string) string { return textsafe.Echo(s) }

var yamlLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`line (\d+)`) })

// yamlError turns the YAML decoder's syntax error into a ConfigError with
// its line.
func yamlError(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine().FindStringSubmatch(msg); m != nil {
		fmt.Sscan(m[1], &line)
		msg = strings.TrimSpace(yamlLine().ReplaceAllString(msg, ""))
		msg = strings.TrimPrefix(msg, ": ")
	}
	return &ConfigError{File: file, Line: line, Msg: "not valid YAML: " + textsafe.Withhold(textsafe.Escape(msg))}
}

// ModuleNames lists the modules, sorted.
func (c *Config) ModuleNames() []string {
	var out []string
	for n := range c.Modules {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
