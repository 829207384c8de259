// Small line charts on a canvas: the last WINDOW_S seconds of a few series.
"use strict";

const WINDOW_S = 60;

class LineChart {
  // title: shown above; series: [{key, label, color}]; unit: axis label.
  constructor(parent, title, series, unit) {
    this.series = series;
    this.unit = unit;
    this.points = [];  // [time (s), {key: value}]
    const box = document.createElement("figure");
    box.className = "chart";
    const caption = document.createElement("figcaption");
    caption.textContent = title;
    this.canvas = document.createElement("canvas");
    this.canvas.width = 400;
    this.canvas.height = 130;
    box.append(caption, this.canvas);
    parent.appendChild(box);
  }

  add(t, values) {
    this.points.push([t, values]);
    while (this.points.length && this.points[0][0] < t - WINDOW_S) this.points.shift();
    this.draw(t);
  }

  draw(now) {
    const ctx = this.canvas.getContext("2d");
    const {width, height} = this.canvas;
    const left = 44, right = 8, top = 18, bottom = 16;
    ctx.clearRect(0, 0, width, height);
    const values = this.points.flatMap(([, v]) => this.series.map((s) => v[s.key]))
      .filter((x) => typeof x === "number" && Number.isFinite(x));
    let lo = values.length ? Math.min(...values) : 0;
    let hi = values.length ? Math.max(...values) : 1;
    if (lo > 0 && lo < hi / 2) lo = 0;
    if (hi - lo < 1e-9) { hi += 1; lo -= lo > 1 ? 1 : 0; }
    const x = (t) => left + (width - left - right) * (1 - (now - t) / WINDOW_S);
    const y = (v) => top + (height - top - bottom) * (1 - (v - lo) / (hi - lo));
    ctx.strokeStyle = "#ccc";
    ctx.strokeRect(left, top, width - left - right, height - top - bottom);
    ctx.fillStyle = "#555";
    ctx.font = "10px system-ui, sans-serif";
    ctx.fillText(short(hi), 2, top + 8);
    ctx.fillText(short(lo), 2, height - bottom);
    ctx.fillText(this.unit, 2, height - 3);
    ctx.fillText(`-${WINDOW_S} s`, left, height - 3);
    ctx.fillText("now", width - right - 20, height - 3);
    let legend = left;
    for (const s of this.series) {
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 1.6;
      ctx.beginPath();
      let drawing = false;
      for (const [t, v] of this.points) {
        const value = v[s.key];
        if (typeof value !== "number" || !Number.isFinite(value)) { drawing = false; continue; }
        if (drawing) ctx.lineTo(x(t), y(value)); else ctx.moveTo(x(t), y(value));
        drawing = true;
      }
      ctx.stroke();
      const last = this.points.length ? this.points[this.points.length - 1][1][s.key] : null;
      const text = `${s.label} ${typeof last === "number" ? short(last) : "–"}`;
      ctx.fillStyle = s.color;
      ctx.fillText(text, legend, 11);
      legend += ctx.measureText(text).width + 10;
    }
  }
}

function short(v) {
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  if (a >= 100) return v.toFixed(0);
  return v.toFixed(1);
}
