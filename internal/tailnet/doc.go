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
// The package links only tailscale.com/client/local and the small type
// packages it uses (ipnstate, tailcfg). It must never import tsnet, which
// would add about 20 MB to rdctl; tests may.
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
