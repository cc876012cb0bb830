package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	"github.com/yrd-exchange/yrdnode/node"
	"github.com/yrd-exchange/yrdnode/testnet/chaos"
)

// testnetCommands are `yrdnode testnet ...`: a delta of real processes on
// an emulated network, with faults and a linearizability checker.
func testnetCommands() []command {
	return []command{
		{name: "up", summary: "start cities as processes (own netns as root, else 127.x addresses)", setup: runTestnetUp},
		{name: "status", summary: "show each city's raft role, lag and process", setup: runTestnetStatus},
		{name: "down", summary: "stop the cities and remove everything up made (from the state file)", setup: runTestnetDown},
		{name: "chaos", summary: "run checked clients under a seeded fault schedule", setup: runTestnetChaos},
		{name: "fault", summary: "inject one fault: kill|restart|stop|cont|partition|cut|heal|loss|delay|restart-all", setup: runTestnetFault},
		{name: "bench", summary: "measure writes and linearizable reads through the client API (TLS, keys), optionally beside etcd; write a report", setup: runTestnetBench},
		{name: "rtt", summary: "measure the TCP round-trip time between two cities (netns mode)", setup: runTestnetRTT},
		{name: "delayer", summary: "(internal) the userspace latency emulator 'up' starts in netns mode", setup: runTestnetDelayer, outputs: tableOnly, daemon: "runs the latency emulator"},
	}
}

func testnetDirFlag(fs *pflag.FlagSet) *string {
	p := new(string)
	envString(fs, p, "dir", filepath.Join(os.TempDir(), "yrdnode-testnet"), "YRDNODE_TESTNET_DIR", "the testnet's dir: data dirs, logs, state file")
	return p
}

func testnetLogger(env Env) *slog.Logger {
	return slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// testnetCities turns --cities (a count, or ids comma-separated) into
// city ids and the number of voters: the default five vote, the rest not.
func testnetCities(spec string) ([]string, int, error) {
	all := chaos.AllCities()
	if n, err := strconv.Atoi(spec); err == nil {
		if n < 1 || n > len(all) {
			return nil, 0, usageError{fmt.Sprintf("--cities: %d is not between 1 and %d", n, len(all))}
		}
		return all[:n], min(n, len(chaos.DefaultCities)), nil
	}
	ids := strings.Split(spec, ",")
	return ids, min(len(ids), len(chaos.DefaultCities)), nil
}

func runTestnetUp(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	dir := testnetDirFlag(fs)
	citySpec := fs.String("cities", "5", "how many cities (5: Shanghai, Hangzhou, Nanjing, Hefei, Suzhou (Jiangsu) as voters; 41: every delta city, the rest as non-voters), or city ids comma-separated")
	mode := fs.String("mode", "auto", "auto (netns as root with ip, nft and /dev/net/tun; else loopback), netns or loopback")
	loss := fs.Int("loss", 0, "packet loss in percent on every inter-city link")
	rows := fs.Int("rows", 2000, "synthetic rows per dataset for each city's demo datasets (mapped in its yrdnode.toml and published); 0: none")
	return func(ctx context.Context, _ []string) error {
		if *rows < 0 {
			return usageError{fmt.Sprintf("--rows: %d is negative", *rows)}
		}
		ids, voters, err := testnetCities(*citySpec)
		if err != nil {
			return err
		}
		m, err := testnetMode(*mode)
		if err != nil {
			return err
		}
		bin, err := os.Executable()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		t, err := chaos.Up(ctx, chaos.Options{Dir: *dir, Binary: bin, Cities: ids, Voters: voters, Mode: m, Loss: *loss,
			Detach: true, Log: testnetLogger(env), Out: cf.peopleOut(env), SampleRows: *rows})
		if err != nil {
			return fmt.Errorf("%v (what was made is in %s; 'yrdnode testnet down --dir %s' removes it)", err, chaos.Path(*dir), *dir)
		}
		defer t.Close()
		if cf.output == "json" {
			out := testnetUpJSON{ID: t.State.ID, Mode: string(m), StateFile: chaos.Path(*dir), Voters: voters,
				testnetStatusJSON: testnetStatusOf(ctx, t)}
			if *rows > 0 {
				c := t.State.Cities[0]
				out.Operator = &testnetOperatorJSON{City: c.ID, Node: t.Procs.API[0], CA: node.CAPath(c.DataDir), KeyFile: node.OperatorKeyPath(c.DataDir)}
			}
			return printValue(env.Stdout, out)
		}
		fmt.Fprintf(env.Stdout, "testnet %s up in %s mode: %d cities (%d voters), state in %s\n", t.State.ID, m, len(ids), voters, chaos.Path(*dir))
		if err := printTestnetStatus(ctx, env.Stdout, t); err != nil {
			return err
		}
		if *rows > 0 {
			printTestnetTry(env.Stdout, t)
		}
		return nil
	}
}

// printTestnetTry shows how to reach the first city as its operator and
// ask a family query over the sample data.
func printTestnetTry(w io.Writer, t *chaos.Testnet) {
	c := t.State.Cities[0]
	fmt.Fprintf(w, "\nas %s's operator:\n  export YRDNODE_NODE=%s YRDNODE_CA=%s YRDNODE_KEY=$(cat %s)\n", c.ID, t.Procs.API[0],
		node.CAPath(c.DataDir), node.OperatorKeyPath(c.DataDir))
	fmt.Fprintf(w, "  YRDNODE_KEY=$(yrdnode key create --org %s-analytics --role analyst --name me) \\\n", c.ID)
	fmt.Fprintf(w, "    yrdnode query --purpose elderly-care-planning 'SELECT district, count(*) FROM family:%s GROUP BY district'\n", sample.ElderlyPopulationSchemaID)
}

func testnetMode(mode string) (chaos.Mode, error) {
	switch mode {
	case "auto":
		if chaos.NetnsAvailable() == nil {
			return chaos.ModeNetns, nil
		}
		return chaos.ModeLoopback, nil
	case "netns":
		if err := chaos.NetnsAvailable(); err != nil {
			return "", usageError{fmt.Sprintf("--mode netns: %v", err)}
		}
		return chaos.ModeNetns, nil
	case "loopback":
		return chaos.ModeLoopback, nil
	}
	return "", usageError{fmt.Sprintf("--mode: %q is not auto, netns or loopback", mode)}
}

func runTestnetStatus(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	dir := testnetDirFlag(fs)
	return func(ctx context.Context, _ []string) error {
		t, err := chaos.Open(*dir, testnetLogger(env), nil)
		if err != nil {
			return err
		}
		defer t.Close()
		if cf.output == "json" {
			return printValue(env.Stdout, testnetStatusOf(ctx, t))
		}
		return printTestnetStatus(ctx, env.Stdout, t)
	}
}

func printTestnetStatus(ctx context.Context, w io.Writer, t *chaos.Testnet) error {
	rows := t.CityStatus(ctx)
	var out [][]string
	for _, r := range rows {
		lag := "-"
		if r.Lag >= 0 {
			lag = strconv.FormatInt(r.Lag, 10)
		}
		out = append(out, []string{r.City, r.Suffrage, r.Role, strconv.FormatUint(r.Applied, 10), lag, r.Process, r.API, r.Netns})
	}
	table(w, []string{"CITY", "SUFFRAGE", "ROLE", "APPLIED", "LAG", "PROCESS", "API", "NETNS"}, out)
	fmt.Fprintf(w, "latency: %s\n", t.State.Latency())
	return nil
}

func runTestnetDown(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	dir := testnetDirFlag(fs)
	sweep := fs.Bool("sweep", false, "also remove every namespace, link and nftables table named "+chaos.Prefix+"* (leftovers; this removes other running testnets' too)")
	return func(ctx context.Context, _ []string) error {
		log := testnetLogger(env)
		err := chaos.Down(ctx, *dir, log)
		if *sweep {
			err = chaos.Sweep(ctx, log)
			if err == nil && cf.output == "json" {
				return printValue(env.Stdout, testnetDoneJSON{OK: true, Dir: *dir})
			}
			return err
		}
		if err != nil {
			return err
		}
		if cf.output == "json" {
			return printValue(env.Stdout, testnetDoneJSON{OK: true, Dir: *dir})
		}
		fmt.Fprintf(env.Stdout, "testnet in %s is down\n", *dir)
		return nil
	}
}

func runTestnetChaos(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	dir := testnetDirFlag(fs)
	seed := fs.Uint64("seed", 1, "seed of the fault schedule and the clients")
	duration := fs.Duration("duration", time.Minute, "how long to inject faults")
	clients := fs.Int("clients", 6, "concurrent clients")
	keys := fs.Int("keys", 8, "datasets per city the clients write")
	maxOps := fs.Int("max-ops", 100000, "operations per client at most")
	hold := fs.Duration("hold", 3*time.Second, "how long a fault lasts (plus up to half again)")
	gap := fs.Duration("gap", 2*time.Second, "healthy time between faults")
	episodes := fs.String("episodes", "", "comma-separated episodes to run in order instead of a seeded choice: "+episodeNames())
	return func(ctx context.Context, _ []string) error {
		if *duration <= 0 || *clients < 1 || *keys < 1 || *hold <= 0 || *gap < 0 || *maxOps < 1 {
			return usageError{"--duration, --clients, --keys, --max-ops and --hold must be positive"}
		}
		sched := chaos.Schedule{Seed: *seed, Duration: *duration, Hold: *hold, Gap: *gap, CheckTimeout: 5 * time.Minute}
		if *episodes != "" {
			for _, e := range strings.Split(*episodes, ",") {
				if !validEpisode(e) {
					return usageError{fmt.Sprintf("--episodes: %q is not one of %s", e, episodeNames())}
				}
				sched.Episodes = append(sched.Episodes, chaos.Episode(e))
			}
		}
		t, err := chaos.Open(*dir, testnetLogger(env), cf.peopleOut(env))
		if err != nil {
			return err
		}
		defer t.Close()
		res, err := t.RunChecked(ctx, sched, chaos.Workload{Clients: *clients, KeysPerCity: *keys, MaxOps: *maxOps, OpTimeout: 5 * time.Second})
		if err != nil {
			return err
		}
		data, _ := json.MarshalIndent(res, "", "  ")
		if cf.output == "json" {
			fmt.Fprintln(env.Stdout, string(data))
		} else {
			res.Print(env.Stdout)
		}
		os.WriteFile(filepath.Join(*dir, "chaos-result.json"), data, 0o644)
		if !res.Report.Linearizable || len(res.Report.Lost) > 0 {
			return fmt.Errorf("chaos run failed: linearizable %v, %d acknowledged writes lost", res.Report.Linearizable, len(res.Report.Lost))
		}
		return nil
	}
}

func episodeNames() string {
	var names []string
	for _, e := range chaos.AllEpisodes {
		names = append(names, string(e))
	}
	return strings.Join(names, ", ")
}

func validEpisode(e string) bool {
	for _, x := range chaos.AllEpisodes {
		if string(x) == e {
			return true
		}
	}
	return false
}

// runTestnetDelayer is the delayer process `up` starts in netns mode: it
// runs until SIGTERM (`down`) or its testnet is gone.
func runTestnetDelayer(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	dir := testnetDirFlag(fs)
	return func(ctx context.Context, _ []string) error {
		return chaos.RunDelayer(ctx, *dir, testnetLogger(env))
	}
}

func runTestnetRTT(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	dir := testnetDirFlag(fs)
	count := fs.Int("count", 20, "round trips")
	return func(ctx context.Context, pos []string) error {
		if len(pos) != 2 || *count < 1 {
			return usageError{"testnet rtt FROM TO [--count N]"}
		}
		s, err := chaos.Load(*dir)
		if err != nil {
			return err
		}
		from, err := s.CityIndex(pos[0])
		if err != nil {
			return usageError{err.Error()}
		}
		to, err := s.CityIndex(pos[1])
		if err != nil {
			return usageError{err.Error()}
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second+time.Duration(*count)*time.Second)
		defer cancel()
		rtts, err := s.RTT(ctx, from, to, *count)
		if err != nil {
			return err
		}
		want := 0.0
		if len(s.Cities[from].DelayMs) > to {
			want = s.Cities[from].DelayMs[to] + s.Cities[to].DelayMs[from] + float64(s.DelayMs[from]+s.DelayMs[to])
		}
		if cf.output == "json" {
			return printValue(env.Stdout, rttOf(pos[0], pos[1], rtts, want))
		}
		ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }
		fmt.Fprintf(env.Stdout, "%s → %s: rtt min/median/max = %s/%s/%s ms over %d round trips (configured: %.1f ms)\n",
			pos[0], pos[1], ms(rtts[0]), ms(rtts[len(rtts)/2]), ms(rtts[len(rtts)-1]), len(rtts), want)
		return nil
	}
}

// The JSON the testnet commands print with -o json. Their progress, which
// goes to standard output for people, goes to standard error then.

type testnetCityJSON struct {
	City     string `json:"city"`
	Suffrage string `json:"suffrage"`
	Role     string `json:"role"`
	Applied  uint64 `json:"applied"`
	Lag      *int64 `json:"lag"` // null: unknown
	Process  string `json:"process"`
	API      string `json:"api"`
	Netns    string `json:"netns,omitempty"`
}

type testnetStatusJSON struct {
	Cities  []testnetCityJSON `json:"cities"`
	Latency string            `json:"latency"`
}

func testnetStatusOf(ctx context.Context, t *chaos.Testnet) testnetStatusJSON {
	return testnetStatusJSON{Cities: testnetCitiesJSON(t.CityStatus(ctx)), Latency: t.State.Latency()}
}

func testnetCitiesJSON(rows []chaos.CityStatus) []testnetCityJSON {
	out := []testnetCityJSON{}
	for _, r := range rows {
		c := testnetCityJSON{City: r.City, Suffrage: r.Suffrage, Role: r.Role, Applied: r.Applied, Process: r.Process, API: r.API, Netns: r.Netns}
		if r.Lag >= 0 {
			lag := r.Lag
			c.Lag = &lag
		}
		out = append(out, c)
	}
	return out
}

// testnetOperatorJSON is how to reach the first city as its operator:
// YRDNODE_NODE, YRDNODE_CA and the file holding YRDNODE_KEY.
type testnetOperatorJSON struct {
	City    string `json:"city"`
	Node    string `json:"node"`
	CA      string `json:"ca"`
	KeyFile string `json:"key_file"`
}

type testnetUpJSON struct {
	ID        string `json:"id"`
	Mode      string `json:"mode"`
	StateFile string `json:"state_file"`
	Voters    int    `json:"voters"`
	testnetStatusJSON
	Operator *testnetOperatorJSON `json:"operator,omitempty"`
}

// testnetDoneJSON is what the commands that only act print: down, fault.
type testnetDoneJSON struct {
	OK    bool     `json:"ok"`
	Dir   string   `json:"dir"`
	Fault string   `json:"fault,omitempty"`
	Args  []string `json:"args,omitempty"`
}

type rttJSON struct {
	From         string  `json:"from"`
	To           string  `json:"to"`
	RoundTrips   int     `json:"round_trips"`
	MinMS        float64 `json:"min_ms"`
	MedianMS     float64 `json:"median_ms"`
	MaxMS        float64 `json:"max_ms"`
	ConfiguredMS float64 `json:"configured_ms"`
}

// rttOf summarises sorted round-trip times.
func rttOf(from, to string, rtts []time.Duration, want float64) rttJSON {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return rttJSON{From: from, To: to, RoundTrips: len(rtts), MinMS: ms(rtts[0]), MedianMS: ms(rtts[len(rtts)/2]),
		MaxMS: ms(rtts[len(rtts)-1]), ConfiguredMS: want}
}
