// Package chaos runs a delta of real yrdnode processes on an emulated
// network — one network namespace per city, routed through a hub
// namespace whose userspace delayer holds every inter-city packet for
// that pair's one-way delay, or distinct loopback addresses (no latency)
// — and injects faults into it: kill -9 and restart, SIGSTOP/SIGCONT,
// partitions, packet loss and delay spikes. Every fault is logged with a
// timestamp. Everything a testnet creates is listed in a state file in
// its dir, so Down removes it all from that file alone, even after the
// runner crashed. DESIGN.md says why latency is a userspace delayer on a
// TUN device and not tc netem (this kernel has no sch_netem).
package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Mode is how the cities are networked.
type Mode string

const (
	// ModeNetns gives every city its own network namespace, linked by a
	// veth pair to a hub namespace that routes inter-city packets through
	// the delayer's TUN device; needs root, iproute2 and nftables.
	ModeNetns Mode = "netns"
	// ModeLoopback gives every city its own 127.x address.
	ModeLoopback Mode = "loopback"
)

// Prefix starts the name of every namespace, link and nftables table a
// testnet creates, so leftovers can be swept by name.
const Prefix = "yrd"

// StateFile is the state file's name in a testnet's dir.
const StateFile = "testnet.json"

// City is one city of a testnet as the state file records it.
type City struct {
	ID      string `json:"id"`
	Voter   bool   `json:"voter"`
	NS      string `json:"netns,omitempty"`
	Veth    string `json:"veth,omitempty"` // the host end; the city's end is eth0
	IP      string `json:"ip"`
	API     string `json:"api"`
	Fabric  string `json:"fabric"`
	DataDir string `json:"data_dir"`
	Pid     int    `json:"pid,omitempty"`
	// DelayMs is the one-way delay to every other city, in ms (netns
	// mode), from their great-circle distance.
	DelayMs []float64 `json:"delay_ms,omitempty"`
}

// Cut is a one-way cut: packets From → To are dropped.
type Cut struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// State is everything a testnet made and the faults in force.
type State struct {
	ID     string `json:"id"`
	Mode   Mode   `json:"mode"`
	Dir    string `json:"dir"`
	Binary string `json:"binary"`
	// Hub is the namespace every city's link ends in (netns mode); it
	// routes city → city through the delayer's TUN device and holds the
	// fault rules. HubLink is the root namespace's link to it, with
	// address HostIP, through which this host reaches the cities.
	Hub     string `json:"hub_netns,omitempty"`
	HubLink string `json:"hub_link,omitempty"`
	HubIP   string `json:"hub_ip,omitempty"`
	HostIP  string `json:"host_ip,omitempty"`
	// NftFamily and NftTable name the nftables table holding the fault
	// rules (partitions, loss): inet family with a forward hook in the hub
	// namespace in netns mode, inet with an output hook (loopback
	// addresses only) in the root namespace in loopback mode.
	NftFamily string `json:"nft_family"`
	NftTable  string `json:"nft_table"`
	// DelayerPid is the delayer process (netns mode), 0 if none runs.
	// DelayGen counts changes to the delays; the delayer reports the
	// generation it has loaded in delayer.json.
	DelayerPid int    `json:"delayer_pid,omitempty"`
	DelayGen   uint64 `json:"delay_gen,omitempty"`
	// BaseLoss is the loss (percent) on every inter-city link (--loss).
	BaseLoss int    `json:"base_loss,omitempty"`
	Cities   []City `json:"cities"`
	// Faults in force.
	Cuts    []Cut       `json:"cuts,omitempty"`
	Loss    map[int]int `json:"loss,omitempty"`     // city index → percent
	DelayMs map[int]int `json:"delay_ms,omitempty"` // city index → extra ms
}

// Path is the state file of the testnet in dir.
func Path(dir string) string { return filepath.Join(dir, StateFile) }

// Save writes the state file atomically.
func (s *State) Save() error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := Path(s.Dir) + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, Path(s.Dir))
}

// Load reads the state file of the testnet in dir.
func Load(dir string) (*State, error) {
	data, err := os.ReadFile(Path(dir))
	if err != nil {
		return nil, fmt.Errorf("no testnet in %s: %w", dir, err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", Path(dir), err)
	}
	return &s, nil
}

// CityIndex finds a city by id.
func (s *State) CityIndex(id string) (int, error) {
	for i, c := range s.Cities {
		if c.ID == id {
			return i, nil
		}
	}
	return -1, fmt.Errorf("no city %q in this testnet", id)
}
