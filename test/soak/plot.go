package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
)

// plot draws one panel per series, stacked, each scaled to its own range,
// with its maximum and minimum written at the left and the run's length in
// seconds at the bottom right, and writes a PNG. Standard library only.
func plot(path string, xs []float64, series []series) error {
	const w, ph, margin = 960, 200, 60
	img := image.NewRGBA(image.Rect(0, 0, w, ph*len(series)+20))
	fill(img, img.Bounds(), color.White)
	for i, s := range series {
		top := i * ph
		box := image.Rect(margin, top+10, w-10, top+ph-10)
		frame(img, box, color.Gray{160})
		lo, hi := bounds(s.ys)
		if hi == lo {
			hi = lo + 1
		}
		text(img, 4, box.Min.Y, fmt.Sprintf("%.0f", hi), s.color)
		text(img, 4, box.Max.Y-10, fmt.Sprintf("%.0f", lo), s.color)
		last := xs[len(xs)-1]
		if last == 0 {
			last = 1
		}
		px := func(j int) (int, int) {
			x := box.Min.X + int(xs[j]/last*float64(box.Dx()-1))
			y := box.Max.Y - 1 - int((s.ys[j]-lo)/(hi-lo)*float64(box.Dy()-1))
			return x, y
		}
		for j := 1; j < len(xs); j++ {
			x0, y0 := px(j - 1)
			x1, y1 := px(j)
			line(img, x0, y0, x1, y1, s.color)
		}
	}
	text(img, w-120, ph*len(series), fmt.Sprintf("%.0f", xs[len(xs)-1]), color.Black)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type series struct {
	name  string
	ys    []float64
	color color.Color
}

func bounds(ys []float64) (lo, hi float64) {
	lo, hi = ys[0], ys[0]
	for _, y := range ys {
		lo, hi = min(lo, y), max(hi, y)
	}
	return lo, hi
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.Set(x, y, c)
		}
	}
}

func frame(img *image.RGBA, r image.Rectangle, c color.Color) {
	line(img, r.Min.X, r.Min.Y, r.Max.X, r.Min.Y, c)
	line(img, r.Min.X, r.Max.Y, r.Max.X, r.Max.Y, c)
	line(img, r.Min.X, r.Min.Y, r.Min.X, r.Max.Y, c)
	line(img, r.Max.X, r.Min.Y, r.Max.X, r.Max.Y, c)
}

// line is Bresenham's, two pixels thick.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		img.Set(x0, y0, c)
		img.Set(x0, y0+1, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}

// digits is a 3×5 font for numbers, one row of 3 bits per line.
var digits = map[rune][5]uint8{
	'0': {7, 5, 5, 5, 7}, '1': {2, 6, 2, 2, 7}, '2': {7, 1, 7, 4, 7}, '3': {7, 1, 7, 1, 7},
	'4': {5, 5, 7, 1, 1}, '5': {7, 4, 7, 1, 7}, '6': {7, 4, 7, 5, 7}, '7': {7, 1, 1, 1, 1},
	'8': {7, 5, 7, 5, 7}, '9': {7, 5, 7, 1, 7}, '.': {0, 0, 0, 0, 2}, '-': {0, 0, 7, 0, 0},
}

// text writes s (digits, '.', '-') at x, y, each dot 2×2 pixels.
func text(img *image.RGBA, x, y int, s string, c color.Color) {
	for _, r := range s {
		g := digits[r]
		for row, bits := range g {
			for col := range 3 {
				if bits&(4>>col) != 0 {
					fill(img, image.Rect(x+col*2, y+row*2, x+col*2+2, y+row*2+2), c)
				}
			}
		}
		x += 8
	}
}
