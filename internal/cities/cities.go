// Package cities lists the 41 cities of the Yangtze River Delta data
// exchange. A city id names the owner of a dataset and the node that holds
// it, so the list is compiled into the binary: every node must agree on it
// and none may depend on a file beside the executable.
package cities

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
)

// City is one member city. Ids, not names, identify cities: Jiangsu's and
// Anhui's Suzhou (苏州, 宿州) and Jiangsu's and Zhejiang's Taizhou (泰州,
// 台州) share English names.
type City struct {
	ID       string
	Name     string
	NameZh   string
	Province string
	Lat, Lon float64
}

//go:embed delta-cities.csv
var citiesCSV []byte

// header is the column layout parse expects; checking it catches a
// reordered file that would otherwise parse into the wrong fields.
var header = []string{"id", "name", "name_zh", "province", "lat", "lon"}

type table struct {
	list []City
	byID map[string]int
}

// load parses the embedded file once. The file is part of the binary, so a
// parse error is a build defect, not a runtime condition: panic.
var load = sync.OnceValue(func() table { return mustParse(citiesCSV) })

func mustParse(data []byte) table {
	t, err := parse(data)
	if err != nil {
		panic("cities: embedded delta-cities.csv: " + err.Error())
	}
	return t
}

func parse(data []byte) (table, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = len(header)
	got, err := r.Read()
	if err != nil {
		return table{}, fmt.Errorf("reading header: %w", err)
	}
	if !slices.Equal(got, header) {
		return table{}, fmt.Errorf("header is %q, want %q", got, header)
	}
	t := table{byID: make(map[string]int)}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return table{}, err
		}
		line, _ := r.FieldPos(0)
		for i, f := range rec[:4] {
			if f == "" {
				return table{}, fmt.Errorf("line %d: empty %s", line, header[i])
			}
		}
		lat, err := strconv.ParseFloat(rec[4], 64)
		if err != nil || lat < -90 || lat > 90 {
			return table{}, fmt.Errorf("line %d: bad lat %q", line, rec[4])
		}
		lon, err := strconv.ParseFloat(rec[5], 64)
		if err != nil || lon < -180 || lon > 180 {
			return table{}, fmt.Errorf("line %d: bad lon %q", line, rec[5])
		}
		c := City{ID: rec[0], Name: rec[1], NameZh: rec[2], Province: rec[3], Lat: lat, Lon: lon}
		if _, dup := t.byID[c.ID]; dup {
			return table{}, fmt.Errorf("line %d: duplicate id %q", line, c.ID)
		}
		t.byID[c.ID] = len(t.list)
		t.list = append(t.list, c)
	}
	if len(t.list) == 0 {
		return table{}, fmt.Errorf("no cities")
	}
	return t, nil
}

// All returns every city in file order. The slice is a copy the caller may
// modify.
func All() []City {
	return slices.Clone(load().list)
}

// Lookup returns the city with the given id.
func Lookup(id string) (City, bool) {
	t := load()
	i, ok := t.byID[id]
	if !ok {
		return City{}, false
	}
	return t.list[i], true
}

// IDs returns the ids of all cities in file order.
func IDs() []string {
	list := load().list
	ids := make([]string, len(list))
	for i, c := range list {
		ids[i] = c.ID
	}
	return ids
}
