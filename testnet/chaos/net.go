package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/cities"
	"github.com/yrd-exchange/yrdnode/testnet"
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
// with ip and nft on the PATH.
func NetnsAvailable() error {
	for _, tool := range []string{"ip", "tc", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (apt-get install -y iproute2 nftables)", tool)
		}
	}
	if out, err := exec.Command("id", "-u").Output(); err != nil || strings.TrimSpace(string(out)) != "0" {
		return errors.New("not root")
	}
	return nil
}

// addressing fills in names and addresses from the testnet id: netns
// mode uses 10.A.B.0/24 (the bridge is .254), loopback 127.A.B.0/24.
func (s *State) addressing(n uint16) {
	a, b := 200+int(n>>8)%50, int(n&0xff)
	if s.Mode == ModeLoopback {
		a = 20 + int(n>>8)%200
	}
	s.NftTable = Prefix + s.ID
	s.NftFamily = "inet"
	if s.Mode == ModeNetns {
		s.NftFamily = "bridge"
		s.Bridge = Prefix + s.ID + "br"
		s.BridgeIP = fmt.Sprintf("10.%d.%d.254", a, b)
	}
	for i := range s.Cities {
		c := &s.Cities[i]
		if s.Mode == ModeNetns {
			c.IP = fmt.Sprintf("10.%d.%d.%d", a, b, i+1)
			c.NS = fmt.Sprintf("%s-%s-%s", Prefix, s.ID, c.ID)
			c.Veth = fmt.Sprintf("%s%sv%d", Prefix, s.ID, i)
		} else {
			c.IP = fmt.Sprintf("127.%d.%d.%d", a, b, i+1)
		}
		c.API = net.JoinHostPort(c.IP, strconv.Itoa(testnet.ProcAPIPort))
		c.Fabric = fmt.Sprintf("/ip4/%s/tcp/%d", c.IP, testnet.ProcFabricPort)
	}
}

// setupNetns creates the bridge, one namespace per city and its veth.
// Names are in the state file before anything is made.
func (s *State) setupNetns(ctx context.Context) error {
	steps := [][]string{
		{"ip", "link", "add", s.Bridge, "type", "bridge"},
		{"ip", "addr", "add", s.BridgeIP + "/24", "dev", s.Bridge},
		{"ip", "link", "set", s.Bridge, "up"},
	}
	for _, c := range s.Cities {
		in := []string{"ip", "netns", "exec", c.NS}
		steps = append(steps,
			[]string{"ip", "netns", "add", c.NS},
			[]string{"ip", "link", "add", c.Veth, "type", "veth", "peer", "name", "eth0", "netns", c.NS},
			[]string{"ip", "link", "set", c.Veth, "master", s.Bridge, "up"},
			append(in, "ip", "addr", "add", c.IP+"/24", "dev", "eth0"),
			append(in, "ip", "link", "set", "eth0", "up"),
			append(in, "ip", "link", "set", "lo", "up"))
	}
	for _, st := range steps {
		if err := run(ctx, st...); err != nil {
			return err
		}
	}
	return nil
}

// netemAvailable tries a netem qdisc on the first city's link.
func (s *State) netemAvailable(ctx context.Context) bool {
	c := s.Cities[0]
	if err := run(ctx, "ip", "netns", "exec", c.NS, "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "1ms"); err != nil {
		return false
	}
	return run(ctx, "ip", "netns", "exec", c.NS, "tc", "qdisc", "del", "dev", "eth0", "root") == nil
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

// applyNetem gives city i's link one htb class per destination city with
// a netem qdisc holding that pair's delay (plus any delay spike on i).
func (s *State) applyNetem(ctx context.Context, i int) error {
	c := s.Cities[i]
	tc := func(args ...string) error {
		return run(ctx, append([]string{"ip", "netns", "exec", c.NS, "tc"}, args...)...)
	}
	tc("qdisc", "del", "dev", "eth0", "root") // none yet is fine
	if err := tc("qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb", "default", "1"); err != nil {
		return err
	}
	if err := tc("class", "add", "dev", "eth0", "parent", "1:", "classid", "1:1", "htb", "rate", "10gbit"); err != nil {
		return err
	}
	for j, peer := range s.Cities {
		if j == i {
			continue
		}
		cls := fmt.Sprintf("1:%d", j+10)
		delay := fmt.Sprintf("%.1fms", c.DelayMs[j]+float64(s.DelayMs[i]))
		if err := tc("class", "add", "dev", "eth0", "parent", "1:", "classid", cls, "htb", "rate", "10gbit"); err != nil {
			return err
		}
		if err := tc("qdisc", "add", "dev", "eth0", "parent", cls, "handle", fmt.Sprintf("%d:", j+10), "netem", "delay", delay); err != nil {
			return err
		}
		if err := tc("filter", "add", "dev", "eth0", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
			"match", "ip", "dst", peer.IP+"/32", "flowid", cls); err != nil {
			return err
		}
	}
	return nil
}

// applyRules replaces the nftables table of fault rules with one for the
// faults in force: cuts and loss between cities (never other traffic).
func (s *State) applyRules(ctx context.Context) error {
	hook := "output"
	if s.Mode == ModeNetns {
		hook = "forward"
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
		fmt.Fprintf(&b, "  ip saddr %s ip daddr %s drop\n", s.Cities[cut.From].IP, s.Cities[cut.To].IP)
	}
	for i := range s.Cities {
		if loss := s.BaseLoss + s.Loss[i]; loss > 0 {
			fmt.Fprintf(&b, "  ip saddr %s ip daddr %s numgen random mod 100 < %d drop\n", s.Cities[i].IP, all, min(loss, 100))
		}
	}
	b.WriteString(" }\n}\n")
	return runIn(ctx, b.String(), "nft", "-f", "-")
}

// teardown removes everything the state names; what is already gone is
// not an error, so it can be run again.
func (s *State) teardown(ctx context.Context, log *slog.Logger) error {
	var errs []error
	if s.NftTable != "" {
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
		if c.Veth != "" {
			if err := run(ctx, "ip", "link", "del", c.Veth); err != nil && !missing(err) {
				errs = append(errs, err)
			}
		}
	}
	if s.Bridge != "" {
		if err := run(ctx, "ip", "link", "del", s.Bridge); err != nil && !missing(err) {
			errs = append(errs, err)
		} else if err == nil {
			log.Info("removed bridge", "bridge", s.Bridge)
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
