// ECharts options in the console's colours; large labels for the wall.
export const COLORS = {
  text: "#eaf2ff", dim: "#8ea6c8", line: "#1d3557", accent: "#2bd4ff", accent2: "#3d7bff",
  ok: "#2ee59d", warn: "#ffc53d", bad: "#ff4d5e", critical: "#ff3355", major: "#ff8a3d",
  minor: "#ffd24d", warning: "#4db8ff", grey: "#5d7699",
};
const FONT = { color: COLORS.dim, fontSize: 14 };

function axis(extra = {}) {
  return { axisLabel: FONT, axisLine: { lineStyle: { color: COLORS.line } },
           splitLine: { lineStyle: { color: COLORS.line, type: "dashed" } }, ...extra };
}

const tooltip = { trigger: "axis", backgroundColor: "#0d1b30", borderColor: COLORS.line,
                  textStyle: { color: COLORS.text } };

export function stackedBars(categories, series, { horizontal = true } = {}) {
  const cat = axis({ type: "category", data: categories, splitLine: { show: false } });
  const val = axis({ type: "value", minInterval: 1 });
  return {
    animation: false,
    grid: { left: 8, right: 16, top: 30, bottom: 8, containLabel: true },
    legend: series.some((s) => s.name)
      ? { top: 0, right: 0, textStyle: FONT, itemWidth: 12, itemHeight: 12 } : undefined,
    tooltip: { ...tooltip, axisPointer: { type: "shadow" } },
    xAxis: horizontal ? val : cat,
    yAxis: horizontal ? { ...cat, inverse: true } : val,
    series: series.map((s) => ({ type: "bar", stack: "all", barMaxWidth: 26, ...s,
                                 label: { show: false } })),
  };
}

export function donut(data, { center = "50%", format = String, centerSize = 30 } = {}) {
  const total = data.reduce((n, d) => n + d.value, 0);
  return {
    animation: false,
    tooltip: { trigger: "item", backgroundColor: "#0d1b30", borderColor: COLORS.line,
               textStyle: { color: COLORS.text } },
    legend: { orient: "vertical", right: 0, top: "middle", textStyle: { ...FONT, fontSize: 15 },
              formatter: (name) => `${name}  ${format(data.find((d) => d.name === name)?.value ?? 0)}` },
    series: [{
      type: "pie", radius: ["55%", "80%"], center: ["35%", center], avoidLabelOverlap: true,
      label: { show: true, position: "center", formatter: format(total), fontSize: centerSize,
               fontWeight: 700, color: COLORS.text },
      labelLine: { show: false }, itemStyle: { borderColor: "#0a1628", borderWidth: 3 },
      data: total ? data : [{ name: "—", value: 1, itemStyle: { color: COLORS.line } }],
    }],
  };
}

export function timeLine(series, { yName = "", zoom = false, area = true, min, max,
                                   symbols = false, scale = true } = {}) {
  return {
    animation: false,
    grid: { left: 8, right: 16, top: 30, bottom: zoom ? 56 : 8, containLabel: true },
    legend: series.length > 1 ? { top: 0, right: 0, textStyle: FONT } : undefined,
    tooltip,
    xAxis: axis({ type: "time", splitLine: { show: false }, min, max }),
    yAxis: axis({ type: "value", name: yName, nameTextStyle: FONT, scale }),
    dataZoom: zoom ? [{ type: "inside" }, { type: "slider", height: 22, bottom: 10,
                                             textStyle: FONT, borderColor: COLORS.line }]
      : undefined,
    series: series.map((s, i) => ({
      type: "line", showSymbol: symbols, smooth: false, connectNulls: false,
      lineStyle: { width: 2 }, color: s.color || [COLORS.accent, COLORS.warn, COLORS.ok][i % 3],
      areaStyle: area && i === 0 ? { opacity: 0.12 } : undefined, ...s,
    })),
  };
}

export function gauge(value, name, { max = 100, suffix = "%" } = {}) {
  const color = value >= 90 ? COLORS.bad : value >= 75 ? COLORS.warn : COLORS.ok;
  return {
    animation: false,
    series: [{
      type: "gauge", min: 0, max, radius: "95%", center: ["50%", "58%"],
      startAngle: 210, endAngle: -30, progress: { show: true, width: 14, itemStyle: { color } },
      axisLine: { lineStyle: { width: 14, color: [[1, COLORS.line]] } },
      axisTick: { show: false }, splitLine: { show: false }, axisLabel: { show: false },
      pointer: { show: false }, anchor: { show: false },
      title: { offsetCenter: [0, "48%"], color: COLORS.dim, fontSize: 15 },
      detail: { offsetCenter: [0, "0%"], fontSize: 30, fontWeight: 700, color: COLORS.text,
                formatter: `{value}${suffix}` },
      data: [{ value: Math.round(value), name }],
    }],
  };
}

export function bars(categories, values, { color = COLORS.accent, horizontal = false } = {}) {
  return stackedBars(categories, [{ name: "", data: values, itemStyle: { color } }],
                     { horizontal });
}
