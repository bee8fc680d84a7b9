import Foundation

/// Escapes text for XML/HTML element content and attribute values.
public func xmlEscaped(_ text: String) -> String {
    var result = ""
    result.reserveCapacity(text.count)
    for character in text {
        switch character {
        case "&": result += "&amp;"
        case "<": result += "&lt;"
        case ">": result += "&gt;"
        case "\"": result += "&quot;"
        case "'": result += "&#39;"
        default: result.append(character)
        }
    }
    return result
}

/// Formats a number for an SVG coordinate: two decimals, no exponent.
func svgNumber(_ value: Double) -> String { String(format: "%.2f", value) }

/// Round tick values covering `low...high`, about `count` of them (1, 2 or 5 times a power of 10).
func niceTicks(low: Double, high: Double, count: Int = 5) -> [Double] {
    guard high > low, count > 0 else { return [low] }
    let rawStep = (high - low) / Double(count)
    let magnitude = pow(10, floor(log10(rawStep)))
    let step = [1.0, 2.0, 5.0, 10.0].map { $0 * magnitude }.first { $0 >= rawStep } ?? 10 * magnitude
    var ticks: [Double] = []
    var tick = ceil(low / step) * step
    while tick <= high + step * 1e-9 {
        ticks.append(abs(tick) < step * 1e-9 ? 0 : tick)
        tick += step
    }
    return ticks
}

/// Short label for a tick value.
func tickLabel(_ value: Double) -> String {
    if value == value.rounded(), abs(value) < 1e6 { return String(Int(value)) }
    return String(format: abs(value) < 0.01 ? "%.2e" : "%.3g", value)
}

/// A colour-blind-safe palette (Okabe-Ito) for series.
public let seriesColors = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
