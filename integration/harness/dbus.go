//go:build integration

package harness

import (
	"context"
	"os"
	"strconv"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
)

// SystemdConn connects go-systemd, from the host, to the machine's systemd over the machine's
// system bus (DBusAddress): EXTERNAL auth as the test's uid, then Hello. The caller closes it.
// Product code needs no such dialer: setting DBUS_SYSTEM_BUS_ADDRESS=m.DBusAddress() makes
// sddbus.NewSystemConnectionContext reach the same bus.
func (m *Machine) SystemdConn(ctx context.Context) (*sddbus.Conn, error) {
	addr := m.DBusAddress()
	return sddbus.NewConnection(func() (*godbus.Conn, error) {
		c, err := godbus.Dial(addr, godbus.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		if err := c.Auth([]godbus.Auth{godbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
			c.Close()
			return nil, err
		}
		if err := c.Hello(); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	})
}
