package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/cities"
	"github.com/yrd-exchange/yrdnode/testnet/procnet"
)

// run runs one command (ip, tc, nft), returning its output in the error.
func run(ctx context.Context, argv ...string) error {
	return runIn(ctx, "", argv...)
}

func runIn(ctx context.Context, stdin string, argv ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// NetnsAvailable says whether this process can build namespaces: root,
// with ip and nft on the PATH and a TUN device for the delayer.
func NetnsAvailable() error {
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (apt-get install -y iproute2 nftables)", tool)
		}
	}
	if out, err := exec.Command("id", "-u").Output(); err != nil || strings.TrimSpace(string(out)) != "0" {
		return errors.New("not root")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("no TUN device for the delayer: %w", err)
	}
	return nil
}

// TunName is the delayer's TUN device in the hub namespace.
const TunName = "tun0"

// delayTable is the hub's routing table that sends city → city packets
// into the TUN device.
const delayTable = "100"

// addressing fills in names and addresses from the testnet id: netns
// mode uses 10.A.B.0/24 (the hub is .253, this host .254), loopback
// 127.A.B.0/24.
func (s *State) addressing(n uint16) {
	a, b := 200+int(n>>8)%50, int(n&0xff)
	if s.Mode == ModeLoopback {
		a = 20 + int(n>>8)%200
	}
	s.NftTable = Prefix + s.ID
	s.NftFamily = "inet"
	if s.Mode == ModeNetns {
		s.Hub = fmt.Sprintf("%s-%s-hub", Prefix, s.ID)
		s.HubLink = Prefix + s.ID + "h"
		s.HubIP = fmt.Sprintf("10.%d.%d.253", a, b)
		s.HostIP = fmt.Sprintf("10.%d.%d.254", a, b)
	}
	for i := range s.Cities {
		c := &s.Cities[i]
		if s.Mode == ModeNetns {
			c.IP = fmt.Sprintf("10.%d.%d.%d", a, b, i+1)
			c.NS = fmt.Sprintf("%s-%s-%s", Prefix, s.ID, c.ID)
			c.Veth = fmt.Sprintf("c%d", i) // in the hub namespace
		} else {
			c.IP = fmt.Sprintf("127.%d.%d.%d", a, b, i+1)
		}
		c.API = net.JoinHostPort(c.IP, strconv.Itoa(procnet.ProcAPIPort))
		c.Fabric = fmt.Sprintf("/ip4/%s/tcp/%d", c.IP, procnet.ProcFabricPort)
	}
}

// subnet is the testnet's /24 in netns mode.
func (s *State) subnet() string {
	return s.HubIP[:strings.LastIndexByte(s.HubIP, '.')] + ".0/24"
}

// nsPath is where ip netns keeps a namespace.
func nsPath(ns string) string { return "/var/run/netns/" + ns }

// setupNetns creates the hub namespace with the TUN device, one
// namespace per city with a point-to-point veth link to the hub, and the
// host's link to the hub. In the hub, packets that come in from a city
// for another city are routed (policy routing: iif cI → table 100) into
// the TUN device, where the delayer holds them and writes them back;
// coming out of the TUN they take the main table to the destination's
// link. Host ↔ city packets (the API clients) are routed directly. Names
// are in the state file before anything is made.
func (s *State) setupNetns(ctx context.Context) error {
	hub := []string{"ip", "netns", "exec", s.Hub}
	steps := [][]string{
		{"ip", "netns", "add", s.Hub},
		append(hub, "ip", "link", "set", "lo", "up"),
		append(hub, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"),
		{"ip", "-n", s.Hub, "tuntap", "add", "dev", TunName, "mode", "tun"},
		{"ip", "-n", s.Hub, "link", "set", TunName, "up"},
		{"ip", "link", "add", s.HubLink, "type", "veth", "peer", "name", "host", "netns", s.Hub},
		{"ip", "addr", "add", s.HostIP, "peer", s.HubIP, "dev", s.HubLink},
		{"ip", "link", "set", s.HubLink, "up"},
		{"ip", "route", "add", s.subnet(), "via", s.HubIP, "dev", s.HubLink},
		{"ip", "-n", s.Hub, "addr", "add", s.HubIP, "peer", s.HostIP, "dev", "host"},
		{"ip", "-n", s.Hub, "link", "set", "host", "up"},
	}
	for _, c := range s.Cities {
		in := []string{"ip", "-n", c.NS}
		steps = append(steps,
			[]string{"ip", "netns", "add", c.NS},
			[]string{"ip", "-n", s.Hub, "link", "add", c.Veth, "type", "veth", "peer", "name", "eth0", "netns", c.NS},
			[]string{"ip", "-n", s.Hub, "addr", "add", s.HubIP, "peer", c.IP, "dev", c.Veth},
			[]string{"ip", "-n", s.Hub, "link", "set", c.Veth, "up"},
			[]string{"ip", "-n", s.Hub, "rule", "add", "iif", c.Veth, "lookup", delayTable, "pref", "100"},
			[]string{"ip", "-n", s.Hub, "route", "add", c.IP + "/32", "dev", TunName, "table", delayTable},
			append(in, "link", "set", "lo", "up"),
			append(in, "addr", "add", c.IP, "peer", s.HubIP, "dev", "eth0"),
			append(in, "link", "set", "eth0", "up"),
			append(in, "route", "add", s.subnet(), "via", s.HubIP, "dev", "eth0"))
	}
	for _, st := range steps {
		if err := run(ctx, st...); err != nil {
			return err
		}
	}
	// No IPv6 chatter (router solicitations) into the delayer.
	run(ctx, append(hub, "sysctl", "-qw", "net.ipv6.conf."+TunName+".disable_ipv6=1")...)
	return nil
}

// delays sets each city's one-way delay to every other city from their
// great-circle distance, scaled so the farthest pair gets 15 ms and a
// pair next door about 2 ms.
func (s *State) delays() {
	far := 0.0
	for i := range s.Cities {
		for j := range s.Cities {
			far = max(far, distanceKm(s.Cities[i].ID, s.Cities[j].ID))
		}
	}
	for i := range s.Cities {
		s.Cities[i].DelayMs = make([]float64, len(s.Cities))
		for j := range s.Cities {
			if i != j && far > 0 {
				s.Cities[i].DelayMs[j] = math.Round((2+13*distanceKm(s.Cities[i].ID, s.Cities[j].ID)/far)*10) / 10
			}
		}
	}
}

// distanceKm is the great-circle distance between two delta cities.
func distanceKm(a, b string) float64 {
	ca, _ := cities.Lookup(a)
	cb, _ := cities.Lookup(b)
	rad := math.Pi / 180
	la1, la2, dlat, dlon := ca.Lat*rad, cb.Lat*rad, (cb.Lat-ca.Lat)*rad, (cb.Lon-ca.Lon)*rad
	h := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(la1)*math.Cos(la2)*math.Sin(dlon/2)*math.Sin(dlon/2)
	return 2 * 6371 * math.Asin(math.Sqrt(h))
}

// applyRules replaces the nftables table of fault rules with one for the
// faults in force: cuts and loss between cities (never other traffic).
func (s *State) applyRules(ctx context.Context) error {
	// In the hub a city → city packet is forwarded twice (into the TUN
	// device and out of it): the rules match the first pass only.
	hook, pass := "output", ""
	if s.Mode == ModeNetns {
		hook, pass = "forward", `iifname != "`+TunName+`" `
	}
	var ips []string
	for _, c := range s.Cities {
		ips = append(ips, c.IP)
	}
	all := "{ " + strings.Join(ips, ", ") + " }"
	var b strings.Builder
	fmt.Fprintf(&b, "table %s %s {}\ndelete table %s %s\n", s.NftFamily, s.NftTable, s.NftFamily, s.NftTable)
	fmt.Fprintf(&b, "table %s %s {\n chain faults {\n  type filter hook %s priority 0; policy accept;\n", s.NftFamily, s.NftTable, hook)
	for _, cut := range s.Cuts {
		fmt.Fprintf(&b, "  %sip saddr %s ip daddr %s drop\n", pass, s.Cities[cut.From].IP, s.Cities[cut.To].IP)
	}
	for i := range s.Cities {
		if loss := s.BaseLoss + s.Loss[i]; loss > 0 {
			fmt.Fprintf(&b, "  %sip saddr %s ip daddr %s numgen random mod 100 < %d drop\n", pass, s.Cities[i].IP, all, min(loss, 100))
		}
	}
	b.WriteString(" }\n}\n")
	return runIn(ctx, b.String(), s.nft("-f", "-")...)
}

// nft is an nft command line in the namespace holding the fault rules.
func (s *State) nft(args ...string) []string {
	argv := append([]string{"nft"}, args...)
	if s.Hub != "" {
		argv = append([]string{"ip", "netns", "exec", s.Hub}, argv...)
	}
	return argv
}

// teardown removes everything the state names; what is already gone is
// not an error, so it can be run again. The delayer must be stopped
// first: its TUN device keeps the hub namespace alive.
func (s *State) teardown(ctx context.Context, log *slog.Logger) error {
	var errs []error
	if s.NftTable != "" && s.Hub == "" {
		if err := run(ctx, "nft", "delete", "table", s.NftFamily, s.NftTable); err != nil && !missing(err) {
			errs = append(errs, err)
		}
	}
	for _, c := range s.Cities {
		if c.NS != "" {
			if err := run(ctx, "ip", "netns", "del", c.NS); err != nil && !missing(err) {
				errs = append(errs, err)
			} else if err == nil {
				log.Info("removed namespace", "netns", c.NS)
			}
		}
	}
	if s.HubLink != "" {
		if err := run(ctx, "ip", "link", "del", s.HubLink); err != nil && !missing(err) {
			errs = append(errs, err)
		}
	}
	if s.Hub != "" {
		if err := run(ctx, "ip", "netns", "del", s.Hub); err != nil && !missing(err) {
			errs = append(errs, err)
		} else if err == nil {
			log.Info("removed hub namespace", "netns", s.Hub)
		}
	}
	return errors.Join(errs...)
}

// missing says whether a removal failed because the thing was not there.
func missing(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "No such file") || strings.Contains(msg, "Cannot find device") || strings.Contains(msg, "No such device") ||
		strings.Contains(msg, "does not exist") || strings.Contains(msg, "not found")
}
