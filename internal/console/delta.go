package console

import (
	"context"
	"math"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/cities"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// deltaView is the delta page: the map of the 41 cities with the members
// marked, and the cluster's raft figures as `cluster status` gives them.
type deltaView struct {
	Status        *yrdv1.StatusResponse
	Leader        string // the leader's city, "" without one
	LeaderName    string
	Width, Height int
	Points        []cityPoint
	Members       []memberRow
}

// cityPoint is one city on the map. Class is its member role (leader,
// voter, nonvoter, none); Down marks a member the node cannot reach.
type cityPoint struct {
	ID, Name     string
	X, Y         int
	Class        string
	Down, Member bool
}

type memberRow struct {
	City, Name, Role, State, Error string
	Contact, ContactFull           string // time of day (UTC); the whole time on hover
	Applied, Lag                   uint64
	Reachable, Leader              bool
}

func (c *Console) deltaPage(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	st, err := c.api.cluster.Status(s.creds.outgoing(ctx), &yrdv1.StatusRequest{})
	if err != nil {
		c.apiError(w, r, s, err)
		return
	}
	c.page(w, r, s, "delta", "delta", buildDelta(st, language(r)))
}

func buildDelta(st *yrdv1.StatusResponse, lang string) deltaView {
	v := deltaView{Status: st}
	byCity := map[string]*yrdv1.MemberStatus{}
	for _, m := range st.GetMembers() {
		byCity[m.GetMember().GetCity()] = m
		row := memberRow{City: m.GetMember().GetCity(), Name: cityName(m.GetMember().GetCity(), lang), State: m.GetRaftState(),
			Applied: m.GetAppliedIndex(), Reachable: m.GetReachable(), Leader: m.GetLeader(), Error: m.GetError(), Role: suffrageKey(m.GetRaftSuffrage())}
		if st.GetCommitIndex() > m.GetAppliedIndex() {
			row.Lag = st.GetCommitIndex() - m.GetAppliedIndex()
		}
		if t := m.GetLastContact(); t != nil {
			row.Contact, row.ContactFull = t.AsTime().UTC().Format(time.TimeOnly), t.AsTime().UTC().Format(time.DateTime)
		}
		if row.Leader {
			v.Leader, v.LeaderName = row.City, row.Name
		}
		v.Members = append(v.Members, row)
	}
	sort.Slice(v.Members, func(i, j int) bool { return v.Members[i].City < v.Members[j].City })
	v.Width, v.Height, v.Points = project(byCity, lang)
	return v
}

func suffrageKey(s yrdv1.Suffrage) string {
	if s == yrdv1.Suffrage_SUFFRAGE_VOTER {
		return "role.voter"
	}
	return "role.nonvoter"
}

// mapWidth is the SVG's width in its own units; the height follows from
// the delta's shape. The CSS scales the drawing to the screen.
const mapWidth = 640

// project places every city on an equirectangular map of the delta whose
// east-west scale is corrected at the delta's middle latitude: at this
// size the region is flat enough for it.
func project(members map[string]*yrdv1.MemberStatus, lang string) (int, int, []cityPoint) {
	all := cities.All()
	minLat, maxLat, minLon, maxLon := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, c := range all {
		minLat, maxLat = math.Min(minLat, c.Lat), math.Max(maxLat, c.Lat)
		minLon, maxLon = math.Min(minLon, c.Lon), math.Max(maxLon, c.Lon)
	}
	const margin = 40
	kx := math.Cos((minLat + maxLat) / 2 * math.Pi / 180)
	scale := float64(mapWidth-2*margin) / ((maxLon - minLon) * kx)
	height := int((maxLat-minLat)*scale) + 2*margin
	points := make([]cityPoint, 0, len(all))
	for _, c := range all {
		p := cityPoint{ID: c.ID, Name: cityName(c.ID, lang), Class: "none",
			X: margin + int((c.Lon-minLon)*kx*scale), Y: margin + int((maxLat-c.Lat)*scale)}
		if m := members[c.ID]; m != nil {
			p.Member, p.Down = true, !m.GetReachable()
			p.Class = "nonvoter"
			switch {
			case m.GetLeader():
				p.Class = "leader"
			case m.GetRaftSuffrage() == yrdv1.Suffrage_SUFFRAGE_VOTER:
				p.Class = "voter"
			}
		}
		points = append(points, p)
	}
	return mapWidth, height, points
}

// cityName is a city's name in lang: 苏州 and 宿州 differ in Chinese,
// and in English the province tells the two Suzhous and Taizhous apart.
func cityName(id, lang string) string {
	n, ok := cityNames()[id]
	switch {
	case !ok:
		return id
	case lang == "zh":
		return n.zh
	}
	return n.en
}

type cityNameSet struct{ en, zh string }

// cityNames are every city's names, worked out once: the delta page
// names all 41 cities on every load.
var cityNames = sync.OnceValue(func() map[string]cityNameSet {
	all := cities.All()
	shared := map[string]int{}
	for _, c := range all {
		shared[c.Name]++
	}
	names := make(map[string]cityNameSet, len(all))
	for _, c := range all {
		en := c.Name
		if shared[c.Name] > 1 {
			en += " (" + c.Province + ")"
		}
		names[c.ID] = cityNameSet{en: en, zh: c.NameZh}
	}
	return names
})
