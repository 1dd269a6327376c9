// Package tailnet asks the local tailscaled, over its LocalAPI, about the
// tailnet this host is on: who this node is, which peers it sees and whether
// they are online, how a ping to a peer travels, and it dials peers through
// tailscaled.
//
// # Why the LocalAPI
//
// Dialing through tailscaled ([Client.DialTCP], [Client.DialUDP]) works the
// same whether tailscaled runs with a TUN device or in userspace-networking
// mode, needs no SOCKS proxy and no routes on this host, and resolves MagicDNS
// names inside tailscaled even when the host resolver does not know them.
//
// The package links no tailscale.com package, only the standard library:
// it makes its three LocalAPI calls (status, ping, dial) over the socket
// itself and decodes just the JSON fields it reads into its own types,
// named as tailscaled sends them. Its tests use tailscale.com freely: they
// check those names against tailscale.com's types and run a real tailnet
// of tsnet nodes.
//
// # Errors
//
// Every failure is returned as an [*Error] whose [Error.Kind] can be matched
// with errors.Is against the Err* kinds ([ErrDaemonUnavailable],
// [ErrAccessDenied], [ErrNotRunning], [ErrPeerNotFound], [ErrPeerOffline],
// [ErrRefused], [ErrTimeout], ...), and whose [Error.Hint] names the fix,
// for example "start it: sudo systemctl start tailscaled". [Hint] extracts the
// hint from any error chain. The package never prints.
package tailnet
