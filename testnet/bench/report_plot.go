package bench

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Size of every plot: wide enough for a legend beside the data, small
// enough to sit in a README at its own size (605×378 px at 96 dpi).
const (
	plotWidth  = 16 * vg.Centimeter
	plotHeight = 10 * vg.Centimeter
)

// writePlots writes the plots whose data r has and returns their names.
func writePlots(dir string, r *Report) (map[string]bool, error) {
	type job struct {
		name string
		make func() (*plot.Plot, plot.Legend)
	}
	var jobs []job
	if series := nonEmptySeries(r.Series); len(series) > 0 {
		jobs = append(jobs,
			job{throughputFile, func() (*plot.Plot, plot.Legend) { return throughputPlot(series) }},
			job{latencyFile, func() (*plot.Plot, plot.Legend) { return latencyPlot(series) }})
	}
	if f := r.Federated; f != nil && len(f.Federated)+len(f.Central) > 0 {
		jobs = append(jobs, job{federatedFile, func() (*plot.Plot, plot.Legend) { return federatedPlot(f) }})
	}
	if f := r.Failover; f != nil && len(f.Timeline) > 0 {
		jobs = append(jobs, job{failoverFile, func() (*plot.Plot, plot.Legend) { return failoverPlot(f) }})
	}
	written := map[string]bool{}
	for _, j := range jobs {
		p, leg := j.make()
		if err := savePNG(p, leg, filepath.Join(dir, j.name)); err != nil {
			return nil, fmt.Errorf("bench: %s: %w", j.name, err)
		}
		written[j.name] = true
	}
	return written, nil
}

// nonEmptySeries drops series without points: a line needs at least one.
func nonEmptySeries(series []Series) []Series {
	var out []Series
	for _, s := range series {
		if len(s.Points) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// newPlot is a plot with the report's titles; its legend is drawn beside it
// by savePNG, not inside, so that no line hides under it.
func newPlot(title, x, y string) (*plot.Plot, plot.Legend) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	// Round steps with separators: the default ticker labels 0.00 and 25.00
	// on a 30 s axis and leaves 30000 ungrouped.
	p.X.Tick.Marker = plot.TickerFunc(niceTicks)
	p.Y.Tick.Marker = plot.TickerFunc(niceTicks)
	p.Add(plotter.NewGrid())
	leg := plot.NewLegend()
	leg.TextStyle.Font = font.From(plot.DefaultFont, 10)
	leg.Padding = vg.Points(3)
	leg.Top, leg.Left = true, true
	return p, leg
}

// savePNG draws p on the left and leg on the right of one PNG at path.
func savePNG(p *plot.Plot, leg plot.Legend, path string) error {
	img := vgimg.NewWith(vgimg.UseWH(plotWidth, plotHeight))
	dc := draw.New(img)
	gap := vg.Points(8)
	r := leg.Rectangle(dc)
	legendWidth := r.Max.X - r.Min.X + 2*gap
	p.Draw(draw.Crop(dc, 0, -legendWidth, 0, 0))
	// Below the title so that the legend starts level with the data.
	leg.Draw(draw.Crop(dc, plotWidth-legendWidth+gap, -gap, 0, -vg.Points(28)))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// seriesStyle gives series i a colour of its own, a dash per system (solid
// for the first) and a glyph per kind, so that the lines stay apart in grey.
type seriesStyle struct {
	systems, kinds []string
}

func newSeriesStyle(series []Series) seriesStyle {
	var st seriesStyle
	for _, s := range series {
		if !slices.Contains(st.systems, s.System) {
			st.systems = append(st.systems, s.System)
		}
		if !slices.Contains(st.kinds, s.Kind) {
			st.kinds = append(st.kinds, s.Kind)
		}
	}
	return st
}

func (st seriesStyle) apply(i int, s Series, l *plotter.Line, sc *plotter.Scatter) {
	c := plotutil.DarkColors[i%len(plotutil.DarkColors)]
	l.Color = c
	l.Width = vg.Points(1.5)
	l.Dashes = plotutil.Dashes(slices.Index(st.systems, s.System))
	sc.Color = c
	sc.Radius = vg.Points(3)
	sc.Shape = plotutil.Shape(slices.Index(st.kinds, s.Kind))
}

func seriesLabel(s Series) string { return s.System + " " + s.Kind }

// sortedPoints orders points by clients so that lines run left to right.
func sortedPoints(ps []Point) []Point {
	ps = slices.Clone(ps)
	slices.SortStableFunc(ps, func(a, b Point) int { return a.Clients - b.Clients })
	return ps
}

func throughputPlot(series []Series) (*plot.Plot, plot.Legend) {
	p, leg := newPlot("Throughput", "clients", "ops/s")
	st := newSeriesStyle(series)
	for i, s := range series {
		xys := make(plotter.XYs, 0, len(s.Points))
		for _, pt := range sortedPoints(s.Points) {
			xys = append(xys, plotter.XY{X: float64(pt.Clients), Y: pt.OpsPerSec()})
		}
		addLinePoints(p, &leg, xys, seriesLabel(s), func(l *plotter.Line, sc *plotter.Scatter) {
			st.apply(i, s, l, sc)
		})
	}
	clientsAxis(p, series)
	p.Y.Min = 0
	return p, leg
}

// latencyPlot draws p50, p90 and p99 per series: the colour says the series,
// the dash and glyph the percentile.
func latencyPlot(series []Series) (*plot.Plot, plot.Legend) {
	p, leg := newPlot("Latency", "clients", "latency (ms)")
	quantiles := []struct {
		name string
		of   func(Point) time.Duration
	}{
		{"p50", func(pt Point) time.Duration { return pt.P50 }},
		{"p90", func(pt Point) time.Duration { return pt.P90 }},
		{"p99", func(pt Point) time.Duration { return pt.P99 }},
	}
	var all []float64
	for i, s := range series {
		c := plotutil.DarkColors[i%len(plotutil.DarkColors)]
		for qi, q := range quantiles {
			xys := make(plotter.XYs, 0, len(s.Points))
			for _, pt := range sortedPoints(s.Points) {
				xys = append(xys, plotter.XY{X: float64(pt.Clients), Y: millis(q.of(pt))})
				all = append(all, millis(q.of(pt)))
			}
			addLinePoints(p, &leg, xys, seriesLabel(s)+" "+q.name, func(l *plotter.Line, sc *plotter.Scatter) {
				l.Color, sc.Color = c, c
				l.Width = vg.Points(1.5)
				l.Dashes = plotutil.Dashes(qi)
				sc.Radius = vg.Points(3)
				sc.Shape = plotutil.Shape(qi)
			})
		}
	}
	clientsAxis(p, series)
	logAxis(&p.Y, all)
	return p, leg
}

func addLinePoints(p *plot.Plot, leg *plot.Legend, xys plotter.XYs, label string, style func(*plotter.Line, *plotter.Scatter)) {
	l, sc, err := plotter.NewLinePoints(xys)
	if err != nil {
		return // only for NaN or infinite values, which a measurement does not produce
	}
	style(l, sc)
	p.Add(l, sc)
	leg.Add(label, l, sc)
}

// clientsAxis marks exactly the client counts measured, on a log scale
// when it can, since they grow by factors (1, 16, 64).
func clientsAxis(p *plot.Plot, series []Series) {
	var counts []float64
	for _, s := range series {
		for _, pt := range s.Points {
			counts = append(counts, float64(pt.Clients))
		}
	}
	slices.Sort(counts)
	counts = slices.Compact(counts)
	ticks := make(plot.ConstantTicks, len(counts))
	for i, c := range counts {
		ticks[i] = plot.Tick{Value: c, Label: strconv.FormatFloat(c, 'f', -1, 64)}
	}
	p.X.Tick.Marker = ticks
	if len(counts) > 0 && counts[0] > 0 {
		p.X.Scale = plot.LogScale{}
		p.X.Min, p.X.Max = counts[0]/1.5, counts[len(counts)-1]*1.5
	}
}

// logAxis puts a on a log scale when all values are positive, since reads
// and writes differ by orders of magnitude; its ends are 1, 2 or 5 times a
// power of ten around the values.
func logAxis(a *plot.Axis, values []float64) {
	if len(values) == 0 || slices.Min(values) <= 0 {
		a.Min = 0
		return
	}
	a.Scale = plot.LogScale{}
	a.Min, a.Max = round125(slices.Min(values), false), round125(slices.Max(values), true)
	if a.Max <= a.Min {
		a.Max = a.Min * 10
	}
	a.Tick.Marker = plot.TickerFunc(logTicks)
}

// round125 is the nearest of 1, 2 and 5 times a power of ten at or above v
// (up) or at or below it.
func round125(v float64, up bool) float64 {
	base := math.Pow(10, math.Floor(math.Log10(v)))
	if up {
		for _, m := range []float64{1, 2, 5, 10} {
			if m*base >= v*(1-1e-9) {
				return m * base
			}
		}
	}
	for _, m := range []float64{5, 2, 1} {
		if m*base <= v*(1+1e-9) {
			return m * base
		}
	}
	return base
}

// niceTicks labels about six round values (1, 2 or 5 times a power of ten
// apart) between lo and hi, with thousands separators.
func niceTicks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		return []plot.Tick{{Value: lo, Label: strconv.FormatFloat(lo, 'g', -1, 64)}}
	}
	raw := (hi - lo) / 6
	step := round125(raw, true)
	decimals := max(0, -int(math.Floor(math.Log10(step))))
	var ticks []plot.Tick
	first := math.Ceil(lo / step)
	for i := 0.0; (first+i)*step <= hi+step*1e-9; i++ {
		v := (first+i)*step + 0 // + 0 turns -0 into 0
		label := strconv.FormatFloat(v, 'f', decimals, 64)
		if decimals == 0 {
			label = fmtInt(int64(math.Round(v)))
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: label})
	}
	return ticks
}

// logTicks labels 1, 2 and 5 of every decade and marks the other digits,
// which stays readable over one decade as well as over five.
func logTicks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for m := 1.0; m < 10; m++ {
			v := m * math.Pow(10, e)
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// durationUnit is the unit the federated plot shows its times in: seconds
// once they run long, so that axis labels stay short.
func durationUnit(ds []time.Duration) (string, func(time.Duration) float64) {
	if slices.Max(ds) >= 2*time.Second {
		return "s", time.Duration.Seconds
	}
	return "ms", millis
}

func federatedPlot(f *Federated) (*plot.Plot, plot.Legend) {
	unit, conv := durationUnit(append(slices.Clone(f.Federated), f.Central...))
	title := fmt.Sprintf("Federated group-by over %d cities against one DuckDB", f.Cities)
	p, leg := newPlot(title, "", "time ("+unit+")")
	bars, err := plotter.NewBarChart(plotter.Values{
		conv(medianDuration(f.Federated)), conv(medianDuration(f.Central)),
	}, 2*vg.Centimeter)
	if err == nil {
		bars.Color = color.RGBA{R: 0x9e, G: 0xc5, B: 0xe6, A: 0xff}
		p.Add(bars)
		leg.Add("median", bars)
	}
	var reps plotter.XYs
	for x, ds := range [][]time.Duration{f.Federated, f.Central} {
		for _, d := range ds {
			reps = append(reps, plotter.XY{X: float64(x), Y: conv(d)})
		}
	}
	if sc, err := plotter.NewScatter(reps); err == nil {
		sc.Shape = draw.CircleGlyph{}
		sc.Radius = vg.Points(3)
		p.Add(sc)
		leg.Add("repetition", sc)
	}
	p.NominalX(fmt.Sprintf("federated (%d cities)", f.Cities), "one DuckDB")
	p.X.Min, p.X.Max = -0.6, 1.6
	p.Y.Min = 0
	return p, leg
}

func failoverPlot(f *Failover) (*plot.Plot, plot.Legend) {
	p, leg := newPlot("Failover: writes while the leader is killed", "time since start (s)", "write latency (ms)")
	var ok, failed plotter.XYs
	for _, s := range f.Timeline {
		xy := plotter.XY{X: s.At.Seconds(), Y: millis(s.Latency)}
		if s.OK {
			ok = append(ok, xy)
		} else {
			failed = append(failed, xy)
		}
	}
	addScatter(p, &leg, ok, "acknowledged write", draw.GlyphStyle{
		Color: color.RGBA{B: 0xb0, G: 0x50, A: 0xff}, Radius: vg.Points(1.5), Shape: draw.CircleGlyph{}})
	addScatter(p, &leg, failed, "failed write", draw.GlyphStyle{
		Color: color.RGBA{R: 0xd0, G: 0x20, B: 0x20, A: 0xff}, Radius: vg.Points(3), Shape: draw.CrossGlyph{}})
	if len(f.Kills) > 0 {
		k := &killLines{style: draw.LineStyle{
			Color:  color.RGBA{R: 0x60, G: 0x60, B: 0x60, A: 0xff},
			Width:  vg.Points(1),
			Dashes: []vg.Length{vg.Points(4), vg.Points(3)},
		}}
		for _, at := range f.Kills {
			k.at = append(k.at, at.Seconds())
		}
		p.Add(k)
		leg.Add("leader killed", k)
	}
	p.Y.Min = 0
	return p, leg
}

func addScatter(p *plot.Plot, leg *plot.Legend, xys plotter.XYs, label string, g draw.GlyphStyle) {
	if len(xys) == 0 {
		return
	}
	sc, err := plotter.NewScatter(xys)
	if err != nil {
		return // only for NaN or infinite values, which a measurement does not produce
	}
	sc.GlyphStyle = g
	p.Add(sc)
	leg.Add(label, sc)
}

// killLines draws a vertical line across the whole plot at each x in at.
type killLines struct {
	at    []float64
	style draw.LineStyle
}

// Plot implements plot.Plotter.
func (k *killLines) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, x := range k.at {
		X := trX(x)
		c.StrokeLine2(k.style, X, c.Min.Y, X, c.Max.Y)
	}
}

// DataRange implements plot.DataRanger so that a kill after the last write
// is still inside the plot; it claims no Y range.
func (k *killLines) DataRange() (xmin, xmax, ymin, ymax float64) {
	return slices.Min(k.at), slices.Max(k.at), math.Inf(1), math.Inf(-1)
}

// Thumbnail implements plot.Thumbnailer for the legend.
func (k *killLines) Thumbnail(c *draw.Canvas) {
	x := (c.Min.X + c.Max.X) / 2
	c.StrokeLine2(k.style, x, c.Min.Y, x, c.Max.Y)
}
