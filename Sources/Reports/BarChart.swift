/// A horizontal bar chart, one bar per row, longest first if the rows are given so: what a
/// latency profile (share of time per layer or block) is drawn as.
public struct BarChart: Sendable {
    public struct Bar: Sendable {
        public var label: String
        public var value: Double
        /// Text drawn after the bar, e.g. "31.2 %".
        public var annotation: String
        /// Series index into `seriesColors`, e.g. one colour per network block.
        public var colorIndex: Int

        public init(label: String, value: Double, annotation: String = "", colorIndex: Int = 0) {
            self.label = label
            self.value = value
            self.annotation = annotation
            self.colorIndex = colorIndex
        }
    }

    public var title: String
    public var valueAxisLabel: String
    public var bars: [Bar]
    /// Legend entries (name, colour index), drawn under the title when not empty.
    public var legend: [(name: String, colorIndex: Int)]

    public init(title: String, valueAxisLabel: String, bars: [Bar], legend: [(name: String, colorIndex: Int)] = []) {
        self.title = title
        self.valueAxisLabel = valueAxisLabel
        self.bars = bars
        self.legend = legend
    }

    /// The chart as a standalone SVG document.
    public func svg(width: Double = 760) -> String {
        let barHeight = 18.0, gap = 4.0
        let labelWidth = min(260.0, 7.0 * Double(bars.map(\.label.count).max() ?? 10) + 10)
        let top = legend.isEmpty ? 40.0 : 62.0
        let plotWidth = width - labelWidth - 90
        let height = top + Double(bars.count) * (barHeight + gap) + 50
        let maxValue = max(bars.map(\.value).max() ?? 1, 1e-12)
        let ticks = niceTicks(low: 0, high: maxValue)
        let scale = plotWidth / max(ticks.last ?? maxValue, maxValue)

        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(svgNumber(width))" height="\(svgNumber(height))" \
        viewBox="0 0 \(svgNumber(width)) \(svgNumber(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(svgNumber(width / 2))" y="22" text-anchor="middle" font-size="15" font-weight="bold">\(xmlEscaped(title))</text>

        """
        var legendX = labelWidth
        for entry in legend {
            let color = seriesColors[entry.colorIndex % seriesColors.count]
            svg += "<rect x=\"\(svgNumber(legendX))\" y=\"34\" width=\"12\" height=\"12\" fill=\"\(color)\"/>"
            svg += "<text x=\"\(svgNumber(legendX + 16))\" y=\"44\">\(xmlEscaped(entry.name))</text>\n"
            legendX += 24 + 7 * Double(entry.name.count)
        }
        for tick in ticks {
            let x = labelWidth + tick * scale
            svg += "<line x1=\"\(svgNumber(x))\" y1=\"\(svgNumber(top - 4))\" x2=\"\(svgNumber(x))\" "
            svg += "y2=\"\(svgNumber(height - 40))\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(svgNumber(x))\" y=\"\(svgNumber(height - 26))\" text-anchor=\"middle\">\(tickLabel(tick))</text>\n"
        }
        for (index, bar) in bars.enumerated() {
            let y = top + Double(index) * (barHeight + gap)
            let color = seriesColors[bar.colorIndex % seriesColors.count]
            svg += "<text x=\"\(svgNumber(labelWidth - 6))\" y=\"\(svgNumber(y + 13))\" text-anchor=\"end\">\(xmlEscaped(bar.label))</text>"
            svg += "<rect class=\"bar\" x=\"\(svgNumber(labelWidth))\" y=\"\(svgNumber(y))\" width=\"\(svgNumber(max(0, bar.value) * scale))\" "
            svg += "height=\"\(svgNumber(barHeight))\" fill=\"\(color)\"><title>\(xmlEscaped(bar.label)): \(tickLabel(bar.value))</title></rect>"
            if !bar.annotation.isEmpty {
                svg += "<text x=\"\(svgNumber(labelWidth + max(0, bar.value) * scale + 4))\" y=\"\(svgNumber(y + 13))\">"
                svg += "\(xmlEscaped(bar.annotation))</text>"
            }
            svg += "\n"
        }
        svg += "<text x=\"\(svgNumber(labelWidth + plotWidth / 2))\" y=\"\(svgNumber(height - 8))\" text-anchor=\"middle\">"
        svg += "\(xmlEscaped(valueAxisLabel))</text>\n</svg>\n"
        return svg
    }
}
