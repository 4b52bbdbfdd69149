package safehttp_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/spoolrun/spool/internal/safehttp"
)

// policySeeds are the addresses of TestCheckAddr, reused as fuzz seeds.
var policySeeds = []string{
	"127.0.0.1", "127.8.9.10", "::1", "10.0.0.1", "172.16.0.1", "192.168.1.1",
	"169.254.169.254", "100.64.0.1", "0.0.0.0", "::", "224.0.0.1", "ff02::1",
	"fe80::1", "fe80::1%eth0", "fc00::1", "fd00::2", "::ffff:127.0.0.1",
	"::ffff:10.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1", "8.8.8.8", "1.1.1.1",
	"2606:4700:4700::1111", "93.184.216.34",
}

func TestCheckAddr(t *testing.T) {
	defaults := safehttp.Config{}
	private := safehttp.Config{AllowPrivate: true}
	allowLo := safehttp.Config{Allow: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/32"),
		netip.MustParsePrefix("fd00::/8"),
	}}
	tests := []struct {
		addr   string
		cfg    safehttp.Config
		reason string // "" when allowed
	}{
		// Refused by default.
		{"127.0.0.1", defaults, "loopback address"},
		{"127.8.9.10", defaults, "loopback address"},
		{"::1", defaults, "loopback address"},
		{"10.0.0.1", defaults, "private address"},
		{"172.16.0.1", defaults, "private address"},
		{"172.31.255.255", defaults, "private address"},
		{"192.168.1.1", defaults, "private address"},
		{"169.254.169.254", defaults, "link-local address"},
		{"100.64.0.1", defaults, "shared (CGNAT) address"},
		{"0.0.0.0", defaults, "unspecified address"},
		{"0.1.2.3", defaults, `"this network" address`},
		{"::", defaults, "unspecified address"},
		{"224.0.0.1", defaults, "multicast address"},
		{"255.255.255.255", defaults, "broadcast address"},
		{"240.0.0.1", defaults, "reserved address"},
		{"198.18.0.1", defaults, "benchmarking address"},
		{"192.0.0.8", defaults, "IETF protocol assignment"},
		{"192.0.2.1", defaults, "documentation address"},
		{"ff02::1", defaults, "multicast address"},
		{"fe80::1", defaults, "link-local address"},
		{"fe80::1%eth0", defaults, "link-local address"},
		{"fec0::1", defaults, "site-local address"},
		{"fc00::1", defaults, "unique local (private) address"},
		{"fd00::2", defaults, "unique local (private) address"},
		{"::ffff:127.0.0.1", defaults, "loopback address"},
		{"::ffff:10.0.0.1", defaults, "private address"},
		{"::ffff:0.0.0.0", defaults, "unspecified address"},
		{"::7f00:1", defaults, "IPv4-compatible address"},
		{"64:ff9b::7f00:1", defaults, "NAT64 address embedding 127.0.0.1 (loopback address)"},
		{"64:ff9b::a9fe:a9fe", defaults, "NAT64 address embedding 169.254.169.254 (link-local address)"},
		{"64:ff9b:1::808:808", defaults, "local-use NAT64 address"},
		{"2002:7f00:1::1", defaults, "6to4 address embedding 127.0.0.1 (loopback address)"},
		{"2002:a00:1::", defaults, "6to4 address embedding 10.0.0.1 (private address)"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", defaults, "Teredo address"},
		{"2001:2::1", defaults, "IETF protocol assignment"},
		{"2001:db8::1", defaults, "documentation address"},
		{"100::1", defaults, "discard-only address"},
		{"4000::1", defaults, "reserved address"},

		// Public.
		{"8.8.8.8", defaults, ""},
		{"1.1.1.1", defaults, ""},
		{"93.184.216.34", defaults, ""},
		{"2606:4700:4700::1111", defaults, ""},
		{"::ffff:8.8.8.8", defaults, ""},
		{"64:ff9b::808:808", defaults, ""},
		{"2002:808:808::1", defaults, ""},
		{"172.32.0.1", defaults, ""},

		// AllowPrivate allows all but unspecified, multicast and broadcast.
		{"127.0.0.1", private, ""},
		{"::1", private, ""},
		{"10.0.0.1", private, ""},
		{"169.254.169.254", private, ""},
		{"fd00::2", private, ""},
		{"::ffff:10.0.0.1", private, ""},
		{"64:ff9b::7f00:1", private, ""},
		{"2002:7f00:1::1", private, ""},
		{"240.0.0.1", private, ""},
		{"4000::1", private, ""},
		{"8.8.8.8", private, ""},
		{"0.0.0.0", private, "unspecified address"},
		{"0.1.2.3", private, `"this network" address`},
		{"::", private, "unspecified address"},
		{"224.0.0.1", private, "multicast address"},
		{"ff02::1", private, "multicast address"},
		{"255.255.255.255", private, "broadcast address"},
		{"64:ff9b::e000:1", private, "NAT64 address embedding 224.0.0.1 (multicast address)"},

		// Allow opens exactly the listed prefixes.
		{"127.0.0.1", allowLo, ""},
		{"::ffff:127.0.0.1", allowLo, ""},
		{"fd00::2", allowLo, ""},
		{"127.0.0.2", allowLo, "loopback address"},
		{"::1", allowLo, "loopback address"},
		{"10.0.0.1", allowLo, "private address"},
		{"8.8.8.8", allowLo, ""},
	}
	for _, tt := range tests {
		name := tt.addr
		switch {
		case tt.cfg.AllowPrivate:
			name += "/AllowPrivate"
		case tt.cfg.Allow != nil:
			name += "/Allow"
		}
		t.Run(name, func(t *testing.T) {
			err := safehttp.CheckAddr(netip.MustParseAddr(tt.addr), tt.cfg)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("CheckAddr = %v, want nil", err)
				}
				return
			}
			var ae *safehttp.AddressError
			if !errors.As(err, &ae) || !errors.Is(err, safehttp.ErrForbiddenAddress) {
				t.Fatalf("CheckAddr = %v, want an *AddressError", err)
			}
			if ae.Reason != tt.reason {
				t.Errorf("Reason = %q, want %q", ae.Reason, tt.reason)
			}
		})
	}
}

// TestCheckAddrAllowKeepsAlwaysRefused checks that no Allow prefix, however
// wide, lets through the addresses refused even under AllowPrivate.
func TestCheckAddrAllowKeepsAlwaysRefused(t *testing.T) {
	allow := func(prefixes ...string) safehttp.Config {
		var cfg safehttp.Config
		for _, p := range prefixes {
			cfg.Allow = append(cfg.Allow, netip.MustParsePrefix(p))
		}
		return cfg
	}
	everything := allow("0.0.0.0/0", "::/0")
	tests := []struct {
		addr   string
		cfg    safehttp.Config
		reason string // "" when allowed
	}{
		{"0.0.0.0", everything, "unspecified address"},
		{"0.0.0.0", allow("0.0.0.0/32"), "unspecified address"},
		{"0.1.2.3", allow("0.0.0.0/8"), `"this network" address`},
		{"::", everything, "unspecified address"},
		{"::", allow("::/128"), "unspecified address"},
		{"::ffff:0.0.0.0", everything, "unspecified address"},
		{"224.0.0.1", everything, "multicast address"},
		{"224.0.0.1", allow("224.0.0.0/4"), "multicast address"},
		{"239.255.255.250", allow("239.0.0.0/8"), "multicast address"},
		{"ff02::1", everything, "multicast address"},
		{"ff02::1", allow("ff00::/8"), "multicast address"},
		{"255.255.255.255", everything, "broadcast address"},
		{"255.255.255.255", allow("255.255.255.255/32"), "broadcast address"},
		{"64:ff9b::e000:1", everything, "NAT64 address embedding 224.0.0.1 (multicast address)"},
		{"2002:e000:1::1", everything, "6to4 address embedding 224.0.0.1 (multicast address)"},
		{"64:ff9b::", everything, "NAT64 address embedding 0.0.0.0 (unspecified address)"},

		// What Allow is for still works with the wide prefixes.
		{"127.0.0.1", everything, ""},
		{"10.0.0.1", everything, ""},
		{"::1", everything, ""},
		{"fd00::2", everything, ""},
		{"240.0.0.1", everything, ""},
		{"8.8.8.8", everything, ""},
	}
	for _, tt := range tests {
		t.Run(tt.addr+"/"+tt.cfg.Allow[0].String(), func(t *testing.T) {
			for _, private := range []bool{false, true} {
				cfg := tt.cfg
				cfg.AllowPrivate = private
				err := safehttp.CheckAddr(netip.MustParseAddr(tt.addr), cfg)
				if tt.reason == "" {
					if err != nil {
						t.Fatalf("CheckAddr(AllowPrivate %v) = %v, want nil", private, err)
					}
					continue
				}
				var ae *safehttp.AddressError
				if !errors.As(err, &ae) {
					t.Fatalf("CheckAddr(AllowPrivate %v) = %v, want an *AddressError", private, err)
				}
				if ae.Reason != tt.reason {
					t.Errorf("CheckAddr(AllowPrivate %v): Reason = %q, want %q", private, ae.Reason, tt.reason)
				}
			}
		})
	}
}

func TestCheckAddrInvalid(t *testing.T) {
	if err := safehttp.CheckAddr(netip.Addr{}, safehttp.Config{AllowPrivate: true}); !errors.Is(err, safehttp.ErrForbiddenAddress) {
		t.Fatalf("CheckAddr(zero Addr) = %v, want ErrForbiddenAddress", err)
	}
}

func TestAddressErrorMessage(t *testing.T) {
	err := safehttp.CheckAddr(netip.MustParseAddr("127.0.0.1"), safehttp.Config{})
	const want = "refusing to connect to 127.0.0.1: loopback address"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
}

func FuzzCheckAddr(f *testing.F) {
	for _, s := range policySeeds {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, allowPrivate bool) {
		addr, _ := netip.ParseAddr(s) // the zero Addr on error: must be refused
		err := safehttp.CheckAddr(addr, safehttp.Config{AllowPrivate: allowPrivate})
		if err != nil {
			var ae *safehttp.AddressError
			if !errors.As(err, &ae) || !errors.Is(err, safehttp.ErrForbiddenAddress) || ae.Addr != addr {
				t.Fatalf("CheckAddr(%v) = %#v, want an *AddressError for it", addr, err)
			}
			if !strings.HasPrefix(err.Error(), "refusing to connect to ") {
				t.Fatalf("message %q", err)
			}
		}
		u := addr.WithZone("").Unmap()
		if err == nil && !allowPrivate && (!u.IsValid() || u.IsLoopback() || u.IsPrivate() ||
			u.IsLinkLocalUnicast() || u.IsUnspecified() || u.IsMulticast()) {
			t.Fatalf("CheckAddr(%v) allowed a non-public address", addr)
		}
		if err == nil && (!u.IsValid() || u.IsUnspecified() || u.IsMulticast()) {
			t.Fatalf("CheckAddr(%v, AllowPrivate) allowed an unusable address", addr)
		}
	})
}
