package safehttp

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrForbiddenAddress is matched by every *AddressError. A request that fails
// with it will fail again: callers should not retry it.
var ErrForbiddenAddress = errors.New("safehttp: forbidden address")

// AddressError reports a connection refused by the address policy.
type AddressError struct {
	// Addr is the refused address, as dialled or given to CheckAddr.
	Addr netip.Addr
	// Reason says why it is refused, for example "loopback address".
	Reason string
}

// Error returns a message such as
// "refusing to connect to 127.0.0.1: loopback address".
func (e *AddressError) Error() string {
	return fmt.Sprintf("refusing to connect to %s: %s", e.Addr, e.Reason)
}

// Is reports whether target is ErrForbiddenAddress.
func (e *AddressError) Is(target error) bool { return target == ErrForbiddenAddress }

// rule refuses a range of addresses.
type rule struct {
	prefix netip.Prefix
	reason string
	// always keeps the range refused under Config.AllowPrivate: these are
	// never a single reachable host, and on Linux connecting to an
	// unspecified address reaches the local machine.
	always bool
}

// rules is searched in order, so a range must come before any wider range
// that contains it. Sources: the IANA IPv4 and IPv6 special-purpose address
// registries.
var rules = []rule{
	{netip.MustParsePrefix("0.0.0.0/32"), "unspecified address", true},
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network" address`, true},
	{netip.MustParsePrefix("10.0.0.0/8"), "private address", false},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (CGNAT) address", false},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback address", false},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local address", false},
	{netip.MustParsePrefix("172.16.0.0/12"), "private address", false},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment", false},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation address", false},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast address", false},
	{netip.MustParsePrefix("192.168.0.0/16"), "private address", false},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking address", false},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation address", false},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation address", false},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast address", true},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast address", true},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved address", false},

	{netip.MustParsePrefix("::/128"), "unspecified address", true},
	{netip.MustParsePrefix("::1/128"), "loopback address", false},
	// Deprecated and unused; which host the kernel would reach is unclear.
	{netip.MustParsePrefix("::/96"), "IPv4-compatible address", false},
	// Local-use NAT64 lets the operator choose where the IPv4 address sits.
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 address", false},
	{netip.MustParsePrefix("100::/64"), "discard-only address", false},
	// Teredo obfuscates the client's IPv4 address and embeds a server's.
	{netip.MustParsePrefix("2001::/32"), "Teredo address", false},
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignment", false},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation address", false},
	{netip.MustParsePrefix("3fff::/20"), "documentation address", false},
	{netip.MustParsePrefix("fc00::/7"), "unique local (private) address", false},
	{netip.MustParsePrefix("fe80::/10"), "link-local address", false},
	{netip.MustParsePrefix("fec0::/10"), "site-local address", false},
	{netip.MustParsePrefix("ff00::/8"), "multicast address", true},
}

var (
	nat64         = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour     = netip.MustParsePrefix("2002::/16")
	globalUnicast = netip.MustParsePrefix("2000::/3")
)

// CheckAddr reports whether cfg allows connecting to addr. It returns nil or
// an *AddressError. Only cfg.AllowPrivate and cfg.Allow are consulted.
//
// IPv4-mapped IPv6 addresses are checked as the IPv4 address they map, and
// NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses by the IPv4 address
// they embed. IPv6 addresses outside 2000::/3, the only range allocated for
// global unicast, are refused unless allowed explicitly, so ranges the
// rules do not name fail closed.
//
// Unspecified, "this network", multicast and broadcast addresses are refused
// whatever cfg says, cfg.Allow included: they are never a single reachable
// host, so a wide Allow prefix such as 0.0.0.0/0 must not let them through.
func CheckAddr(addr netip.Addr, cfg Config) error {
	// Prefix.Contains never matches a zoned address, and a mapped address
	// is the same host as the IPv4 one.
	a := addr.WithZone("").Unmap()
	// Under allowPrivate, refusal returns only the always-refused reasons.
	if reason := refusal(a, true); reason != "" {
		return &AddressError{Addr: addr, Reason: reason}
	}
	for _, p := range cfg.Allow {
		if p.Contains(a) {
			return nil
		}
	}
	if reason := refusal(a, cfg.AllowPrivate); reason != "" {
		return &AddressError{Addr: addr, Reason: reason}
	}
	return nil
}

// refusal returns why a is refused, or "" if it is allowed.
func refusal(a netip.Addr, allowPrivate bool) string {
	if !a.IsValid() {
		return "invalid address"
	}
	if v4, kind, ok := embeddedIPv4(a); ok {
		if r := refusal(v4, allowPrivate); r != "" {
			return fmt.Sprintf("%s address embedding %s (%s)", kind, v4, r)
		}
		return ""
	}
	for _, r := range rules {
		if r.prefix.Contains(a) {
			if allowPrivate && !r.always {
				return ""
			}
			return r.reason
		}
	}
	if a.Is6() && !globalUnicast.Contains(a) && !allowPrivate {
		return "reserved address"
	}
	return ""
}

// embeddedIPv4 extracts the IPv4 address that a routes to, for the IPv6
// forms where its position is fixed.
func embeddedIPv4(a netip.Addr) (v4 netip.Addr, kind string, ok bool) {
	if !a.Is6() {
		return netip.Addr{}, "", false
	}
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), "NAT64", true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), "6to4", true
	}
	return netip.Addr{}, "", false
}
