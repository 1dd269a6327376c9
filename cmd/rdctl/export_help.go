package main

// exportHelp is export's --help: the formats, the tree, where the values
// come from and the JSON document. It is long, so it has a file of its own.
const exportHelp = `Writes what RustDesk clients need to use this server: the ID server, the relay,
the API server and the server's public key, which rdctl derives from the secret
key in the working directory exactly as hbbs does (the secret itself never goes
into any output). Every output is encoded, decoded again by rdctl's own decoder
and compared before anything is printed or written; a difference is a bug in
rdctl and fails the command (exit 1).

Formats (--format, default toml):
  toml               RustDesk2.toml: the [options] table the client reads
  server.conf        the same, under a header saying where RustDesk reads it
  string             the config string, for "Import server config" and
                     rustdesk --config (printed bare, plus a newline)
  exe-name           installer name rustdesk-host=H,key=K,.exe; refused (exit 2)
                     when a value cannot be in a Windows file name: a key with
                     '/', a port, an API URL
  exe-name-licensed  installer name rustdesk-licensed-<string>.exe; always works
  json               host, relay, api, key and fingerprint
  ps1                PowerShell imaging script: stops the RustDesk service,
                     writes RustDesk2.toml into the service profile and the
                     Default user profile, starts the service again
  qr                 PNG QR code of config=<string> for the mobile app
                     (binary: needs --out FILE)
  all                a provisioning tree in --out DIR (below)

Output goes to stdout (--out -, the default). --out FILE writes one format
atomically, mode 0644; a symlink, directory or device there is refused.
--format all --out DIR writes, each file atomically:
  windows/rustdesk/RustDesk2.toml     for the service profile (see README.txt)
  windows/rustdesk/server.conf        the same, for bundles that expect it
  windows/rustdesk/install-config.ps1 the imaging script
  linux/RustDesk2.toml, macos/RustDesk2.toml
  config-string.txt, installer-name.txt, config-qr.png
  README.txt                          where each file goes
Running it again with the same configuration rewrites nothing and says
"unchanged"; --dry-run lists what --out would write and writes nothing
(output to stdout changes nothing and is printed as usual).

Values come from the deployment record (under --root) and can be overridden
with --id-host, --relay and --api (--relay '' or --api '' leaves one out).
The key is the live one, or with --staged the next one that
"rdctl rotate --stage" prepared, so media can be built before
"rdctl rotate --commit". Without a deployment record give --key and --id-host.
Export only reads the server's files: it takes no lock and needs no root.

Clients are given the shortest equivalent values: default ports are left out
(21116 on the ID server, 21117 on the relay), and a relay that is the ID
server's own host on 21117 is left out entirely, because the client derives
exactly that relay from an ID server on 21116. This keeps the exe-name form
possible (':' cannot be in a Windows file name).

JSON (--json): host, relay, api, key, fingerprint, staged, dry_run, changed,
steps[] (action, target, changed: the plan, as every mutating command
reports it) and files[] (path, format, changed) for what --out wrote.
Without --out, --json prints only this document.

Examples:
  rdctl export
  rdctl export --format string
  rdctl --root ./image export --format all --out ./media
  rdctl export --format qr --out rustdesk-qr.png
  rdctl rotate --stage && rdctl export --staged --format all --out /media/usb
  rdctl export --key AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= --id-host rd.example.com --format exe-name`
