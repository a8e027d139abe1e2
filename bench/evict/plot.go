package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// plot draws each job count's per-trial distributions of keystroke→all
// frozen (solid) and keystroke→all gone (dashed) as CDFs on one log-scaled
// time axis, with the goals as vertical lines.
func plot(rs []result) string {
	const (
		w, h                     = 760, 420
		left, right, top, bottom = 60, 20, 54, 90
		pw, ph                   = w - left - right, h - top - bottom
	)
	colors := []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"}

	// The axis: whole decades around the data and the goals.
	lo, hi := ms(goalFrozen), ms(goalGone)
	for _, r := range rs {
		for _, d := range append(r.perTrial(allFrozen), r.perTrial(allGone)...) {
			if m := ms(d); m > 0 {
				lo, hi = math.Min(lo, m), math.Max(hi, m)
			}
		}
	}
	hi = math.Max(hi, 1.5*ms(goalGone)) // the goal line inside the frame
	dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dhi <= dlo {
		dhi = dlo + 1
	}
	x := func(m float64) float64 {
		m = math.Max(m, math.Pow(10, dlo))
		return left + (math.Log10(m)-dlo)/(dhi-dlo)*pw
	}
	y := func(f float64) float64 { return top + (1-f)*ph }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">Owner keystroke on h2 to all foreign jobs frozen and gone (per trial, CDF)</text>`+"\n", left)

	// Grid and axes.
	for d := dlo; d <= dhi; d++ {
		for k := 1; k < 10; k++ {
			m := float64(k) * math.Pow(10, d)
			if d == dhi && k > 1 {
				break
			}
			stroke, width := "#eee", 1
			if k == 1 {
				stroke = "#ccc"
			}
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="%d"/>`+"\n", x(m), top, x(m), top+ph, stroke, width)
			if k == 1 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(m), top+ph+16, msLabel(m))
			}
		}
	}
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 1} {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>`+"\n", left, y(f), left+pw, y(f))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n", left-6, y(f)+4, f)
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#999" stroke-dasharray="1 3"/>`+"\n", left, y(0.99), left+pw, y(0.99))
	fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" fill="#666">p99</text>`+"\n", left+pw-4, y(0.99)+14)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">time after the keystroke (ms, log scale)</text>`+"\n", left+pw/2, top+ph+34)
	fmt.Fprintf(&b, `<text transform="translate(16 %d) rotate(-90)" text-anchor="middle">fraction of trials</text>`+"\n", top+ph/2)

	// The goals.
	for _, g := range []struct {
		d     time.Duration
		label string
	}{{goalFrozen, "goal: p99 frozen ≤ 50 ms"}, {goalGone, "goal: gone ≤ 1 s"}} {
		gx := x(ms(g.d))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#444" stroke-width="1.5" stroke-dasharray="2 3"/>`+"\n", gx, top, gx, top+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#444">%s</text>`+"\n", gx, top-6, g.label)
	}

	// The CDFs.
	for i, r := range rs {
		c := colors[i%len(colors)]
		for _, s := range []struct {
			f    func(trial) time.Duration
			dash string
		}{{allFrozen, ""}, {allGone, ` stroke-dasharray="6 4"`}} {
			ds := r.perTrial(s.f)
			slices.Sort(ds)
			var pts []string
			for k, d := range ds {
				px := x(ms(d))
				pts = append(pts, fmt.Sprintf("%.1f,%.1f %.1f,%.1f", px, y(float64(k)/float64(len(ds))), px, y(float64(k+1)/float64(len(ds)))))
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", c, s.dash, strings.Join(pts, " "))
		}
	}

	// The legend, under the plot.
	ly := top + ph + 56
	lx := left
	for i, r := range rs {
		c := colors[i%len(colors)]
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", lx, ly-4, lx+24, ly-4, c)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%d job(s), %d trials</text>`+"\n", lx+30, ly, r.jobs, len(r.trials))
		lx += 170
	}
	ly += 20
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333" stroke-width="2"/>`+"\n", left, ly-4, left+24, ly-4)
	fmt.Fprintf(&b, `<text x="%d" y="%d">all frozen</text>`+"\n", left+30, ly)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333" stroke-width="2" stroke-dasharray="6 4"/>`+"\n", left+170, ly-4, left+194, ly-4)
	fmt.Fprintf(&b, `<text x="%d" y="%d">all gone (keystroke time: before `+"`sprite lab type`"+` starts)</text>`+"\n", left+200, ly)
	b.WriteString("</svg>\n")
	return b.String()
}

func msLabel(m float64) string {
	if m >= 1000 {
		return fmt.Sprintf("%g s", m/1000)
	}
	return fmt.Sprintf("%g ms", m)
}
