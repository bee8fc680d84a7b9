import Foundation
import Testing
@testable import Reports

#if canImport(FoundationXML)
import FoundationXML
#endif

/// Parses an SVG/XML document and counts its elements by name; fails on malformed XML.
private final class ElementCounter: NSObject, XMLParserDelegate {
    var counts: [String: Int] = [:]
    var classes: [String: Int] = [:]
    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        counts[name, default: 0] += 1
        if let cls = attributes["class"] { classes[cls, default: 0] += 1 }
    }
}

private func parse(_ xml: String) throws -> ElementCounter {
    let counter = ElementCounter()
    let parser = XMLParser(data: Data(xml.utf8))
    parser.delegate = counter
    #expect(parser.parse(), "malformed XML: \(parser.parserError.map { "\($0)" } ?? "")")
    return counter
}

@Test func paretoFrontIsTheNonDominatedStaircase() {
    let series = ParetoPlot.Series(name: "full", points: [
        .init(x: 10, y: 0.80, label: "a"), .init(x: 8, y: 0.70, label: "b"), .init(x: 12, y: 0.75, label: "dominated"),
        .init(x: 6, y: 0.50, label: "c"), .init(x: 9, y: 0.60, label: "dominated too"),
    ])
    #expect(series.front.map(\.label) == ["c", "b", "a"])
}

@Test func paretoPlotIsValidSVGWithOneCirclePerTrial() throws {
    let plot = ParetoPlot(
        title: "AP <vs> latency", xLabel: "latency (ms)", yLabel: "AP@0.5",
        series: [
            .init(name: "full training", points: [.init(x: 7.5, y: 0.8, label: "k5-g1-c96-w320"), .init(x: 5, y: 0.7, label: "x")]),
            .init(name: "bayesian ridge", points: [.init(x: 4, y: 0.75, label: "y")]),
        ],
        baseline: .init(x: 7.5, y: 0.8, label: "k5-g1-c96-w320"))
    let counter = try parse(plot.svg())
    #expect(counter.classes["trial"] == 3)
    #expect(counter.classes["front"] == 2)
    #expect(counter.classes["baseline"] == 1)
}

@Test func barChartHasOneBarPerRow() throws {
    let chart = BarChart(title: "Latency by block", valueAxisLabel: "ms", bars: [
        .init(label: "stage3", value: 2.5, annotation: "40 %", colorIndex: 1),
        .init(label: "head & <output>", value: 1.2, annotation: "19 %"),
    ], legend: [("backbone", 1), ("head", 0)])
    let counter = try parse(chart.svg())
    #expect(counter.classes["bar"] == 2)
}

@Test func niceTicksAreRoundAndCoverTheRange() {
    #expect(niceTicks(low: 0, high: 7.3) == [0, 2, 4, 6])
    let fractional = niceTicks(low: 0.51, high: 0.83, count: 4)
    #expect(fractional.count == 3)
    for (tick, expected) in zip(fractional, [0.6, 0.7, 0.8]) { #expect(abs(tick - expected) < 1e-9) }
}

@Test func csvQuotesWhatNeedsQuoting() {
    let table = Table(columns: ["name", "note"], rows: [["k5", "plain"], ["k3,g8", "say \"hi\""]])
    #expect(table.csv == "name,note\nk5,plain\n\"k3,g8\",\"say \"\"hi\"\"\"\n")
}

@Test func textTableAlignsColumns() {
    let table = Table(columns: ["block", "ms"], rows: [["stage3", "2.50"], ["head", "10.25"]])
    #expect(table.text == "block      ms\n------  -----\nstage3   2.50\nhead    10.25\n")
    let mixed = Table(columns: ["name", "share"], rows: [["a", "12 %"], ["b", "n/a"]])
    #expect(mixed.text == "name  share\n----  -----\na     12 % \nb     n/a  \n")
}

@Test func htmlReportEscapesText() {
    var report = HTMLReport(title: "A & B")
    report.add(.paragraph("<script>"))
    report.add(.table(Table(columns: ["x"], rows: [["1"]])))
    #expect(report.html.contains("<h1>A &amp; B</h1>"))
    #expect(report.html.contains("&lt;script&gt;"))
    #expect(report.html.contains("<td>1</td>"))
}
