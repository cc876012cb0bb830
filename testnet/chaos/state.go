// Package chaos runs a delta of real yrdnode processes on an emulated
// network — one network namespace per city joined through a bridge, or
// distinct loopback addresses — and injects faults into it: kill -9 and
// restart, SIGSTOP/SIGCONT, partitions, packet loss and delay spikes. Every
// fault is logged with a timestamp. Everything a testnet creates is listed
// in a state file in its dir, so Down removes it all from that file alone,
// even after the runner crashed.
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
	// ModeNetns gives every city its own network namespace, joined to the
	// others by veth links on a bridge; needs root and iproute2.
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
	// Netem is the one-way delay to every other city, in ms (netns mode).
	DelayMs []float64 `json:"delay_ms,omitempty"`
}

// Cut is a one-way cut: packets From → To are dropped.
type Cut struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// State is everything a testnet made and the faults in force.
type State struct {
	ID       string `json:"id"`
	Mode     Mode   `json:"mode"`
	Dir      string `json:"dir"`
	Binary   string `json:"binary"`
	Bridge   string `json:"bridge,omitempty"`
	BridgeIP string `json:"bridge_ip,omitempty"`
	// NftFamily and NftTable name the nftables table holding the fault
	// rules (partitions, loss): bridge family in netns mode, inet (output
	// hook, loopback addresses only) in loopback mode.
	NftFamily string `json:"nft_family"`
	NftTable  string `json:"nft_table"`
	Netem     bool   `json:"netem"`
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
