/// A scatter plot of trials in two objectives with each series' Pareto front drawn as a
/// staircase: AP@0.5 (up is better) against latency (left is better), one series per
/// estimator, the baseline marked apart.
public struct ParetoPlot: Sendable {
    public struct Point: Sendable {
        public var x: Double
        public var y: Double
        /// Tooltip, e.g. the architecture's short name.
        public var label: String

        public init(x: Double, y: Double, label: String) {
            self.x = x
            self.y = y
            self.label = label
        }
    }

    public struct Series: Sendable {
        public var name: String
        public var points: [Point]

        public init(name: String, points: [Point]) {
            self.name = name
            self.points = points
        }

        /// Points no other point beats in both x (smaller) and y (larger), by increasing x.
        public var front: [Point] {
            let sorted = points.sorted { $0.x != $1.x ? $0.x < $1.x : $0.y > $1.y }
            var result: [Point] = []
            for point in sorted where result.last.map({ point.y > $0.y }) ?? true {
                result.append(point)
            }
            return result
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    public var baseline: Point?

    public init(title: String, xLabel: String, yLabel: String, series: [Series], baseline: Point? = nil) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.baseline = baseline
    }

    public func svg(width: Double = 760, height: Double = 480) -> String {
        let left = 70.0, right = 20.0, top = 50.0, bottom = 60.0
        let all = series.flatMap(\.points) + (baseline.map { [$0] } ?? [])
        let xs = all.map(\.x), ys = all.map(\.y)
        let xTicks = niceTicks(low: xs.min() ?? 0, high: xs.max() ?? 1)
        let yTicks = niceTicks(low: ys.min() ?? 0, high: ys.max() ?? 1)
        let xLow = min(xTicks.first ?? 0, xs.min() ?? 0), xHigh = max(xTicks.last ?? 1, xs.max() ?? 1)
        let yLow = min(yTicks.first ?? 0, ys.min() ?? 0), yHigh = max(yTicks.last ?? 1, ys.max() ?? 1)
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        func px(_ x: Double) -> Double { left + (xHigh > xLow ? (x - xLow) / (xHigh - xLow) : 0.5) * plotWidth }
        func py(_ y: Double) -> Double { top + plotHeight - (yHigh > yLow ? (y - yLow) / (yHigh - yLow) : 0.5) * plotHeight }

        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(svgNumber(width))" height="\(svgNumber(height))" \
        viewBox="0 0 \(svgNumber(width)) \(svgNumber(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(svgNumber(width / 2))" y="22" text-anchor="middle" font-size="15" font-weight="bold">\(xmlEscaped(title))</text>
        <rect x="\(svgNumber(left))" y="\(svgNumber(top))" width="\(svgNumber(plotWidth))" height="\(svgNumber(plotHeight))" fill="none" stroke="#888"/>

        """
        for tick in xTicks {
            svg += "<line x1=\"\(svgNumber(px(tick)))\" y1=\"\(svgNumber(top))\" x2=\"\(svgNumber(px(tick)))\" y2=\"\(svgNumber(top + plotHeight))\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(svgNumber(px(tick)))\" y=\"\(svgNumber(top + plotHeight + 16))\" text-anchor=\"middle\">\(tickLabel(tick))</text>\n"
        }
        for tick in yTicks {
            svg += "<line x1=\"\(svgNumber(left))\" y1=\"\(svgNumber(py(tick)))\" x2=\"\(svgNumber(left + plotWidth))\" y2=\"\(svgNumber(py(tick)))\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(svgNumber(left - 6))\" y=\"\(svgNumber(py(tick) + 4))\" text-anchor=\"end\">\(tickLabel(tick))</text>\n"
        }
        for (index, entry) in series.enumerated() {
            let color = seriesColors[index % seriesColors.count]
            // The staircase a front draws: from each front point right to the next one's x.
            let front = entry.front
            if !front.isEmpty {
                var path = "M\(svgNumber(px(front[0].x))),\(svgNumber(py(front[0].y)))"
                for point in front.dropFirst() {
                    path += " H\(svgNumber(px(point.x))) V\(svgNumber(py(point.y)))"
                }
                svg += "<path class=\"front\" d=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
            }
            for point in entry.points {
                svg += "<circle class=\"trial\" cx=\"\(svgNumber(px(point.x)))\" cy=\"\(svgNumber(py(point.y)))\" r=\"4\" "
                svg += "fill=\"\(color)\" fill-opacity=\"0.6\"><title>\(xmlEscaped(entry.name)): \(xmlEscaped(point.label)) "
                svg += "(\(tickLabel(point.x)), \(tickLabel(point.y)))</title></circle>\n"
            }
            let legendY = top + 16 + Double(index) * 16
            svg += "<rect x=\"\(svgNumber(left + plotWidth - 150))\" y=\"\(svgNumber(legendY - 10))\" width=\"12\" height=\"12\" fill=\"\(color)\"/>"
            svg += "<text x=\"\(svgNumber(left + plotWidth - 134))\" y=\"\(svgNumber(legendY))\">\(xmlEscaped(entry.name))</text>\n"
        }
        if let baseline {
            let x = px(baseline.x), y = py(baseline.y)
            svg += "<path class=\"baseline\" d=\"M\(svgNumber(x - 7)),\(svgNumber(y - 7)) L\(svgNumber(x + 7)),\(svgNumber(y + 7)) "
            svg += "M\(svgNumber(x - 7)),\(svgNumber(y + 7)) L\(svgNumber(x + 7)),\(svgNumber(y - 7))\" stroke=\"black\" stroke-width=\"3\">"
            svg += "<title>baseline \(xmlEscaped(baseline.label))</title></path>"
            // The baseline is usually the slowest point, at the right edge: label it on the inside.
            let onRight = x > left + plotWidth / 2
            svg += "<text x=\"\(svgNumber(onRight ? x - 10 : x + 10))\" y=\"\(svgNumber(y - 8))\" "
                + "text-anchor=\"\(onRight ? "end" : "start")\" font-weight=\"bold\">baseline</text>\n"
        }
        svg += "<text x=\"\(svgNumber(left + plotWidth / 2))\" y=\"\(svgNumber(height - 14))\" text-anchor=\"middle\">\(xmlEscaped(xLabel))</text>"
        svg += "<text transform=\"translate(18,\(svgNumber(top + plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">\(xmlEscaped(yLabel))</text>\n"
        svg += "</svg>\n"
        return svg
    }
}
