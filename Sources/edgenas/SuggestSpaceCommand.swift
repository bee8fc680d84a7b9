import ArgumentParser
import Foundation
import Hardware
import Search
import Vision
import Workflow

/// Reads a layer profile and writes the search space that opens the blocks where the latency is.
struct SuggestSpaceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "suggest-space",
        abstract: "Suggest a search space from a latency profile: open the blocks that take most of the latency.",
        discussion: """
        Ranks the profile's blocks (stem, stage2-4, neck, spp, head) by their share of the latency and \
        opens the choices of the top blocks until together they reach --threshold of it; the other \
        blocks keep the base model's values, and the input width is always searched. The space is \
        written as SearchSpace YAML, which a project config takes unchanged (search_space: FILE). \
        Unless --no-measure, it then measures the base model and the cheapest member of the space \
        (and of the default head space) on the profile's backend: the best-case latency reduction.
        """)

    @Option(help: "profile.json written by 'edgenas profile'.")
    var profile: String

    @Option(help: "Which profile of the file to read: int8 or fp32 (default: int8 when present).")
    var precision: String?

    @Option(help: "Latency share the opened blocks must reach together (0-1].")
    var threshold = 0.8

    @Option(help: "Where to write the space.")
    var output = "search-space.yaml"

    @Flag(help: "Do not measure the best-case latency reduction.")
    var noMeasure = false

    @Option(help: "Latency backend for that measurement (as latency.backend in a config); default: the profile's backend.")
    var latency: String?

    func run() throws {
        let report = try ProfileReport(contentsOf: URL(fileURLWithPath: profile))
        let wanted = precision ?? (report.profiles.contains { $0.precision == "int8" } ? "int8" : "fp32")
        guard let chosen = report.profiles.first(where: { $0.precision == wanted }) else {
            throw ValidationError("\(profile) has no \(wanted) profile; it has: \(report.profiles.map(\.precision).joined(separator: ", "))")
        }
        let suggestion = try SpaceSuggestion.suggest(from: chosen, threshold: threshold)

        print("\(chosen.architecture), \(chosen.precision) on \(chosen.backend): blocks by share of the latency")
        print("block    share  cumulative  choices")
        for block in suggestion.blocks {
            let names = block.parameters.map(\.rawValue).joined(separator: ", ")
            print(block.block.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)
                  + String(format: "%5.1f%%  %9.1f%%  ", block.share * 100, block.cumulativeShare * 100)
                  + (block.opened ? "opened: \(names)" : "kept at the base (\(names))"))
        }
        print("width: opened (it scales every block)")
        print("space: \(suggestion.space.names.sorted().joined(separator: ", ")) (\(suggestion.space.cardinality) architectures); "
              + "cheapest member \(suggestion.smallest)")

        var notes: [String] = []
        if !noMeasure {
            let reductions = try measureReductions(suggestion, profile: chosen)
            notes.append(String(format: "Best-case latency reduction on %@ (cheapest member vs %@): %.1f %%; the default head space's: %.1f %%.",
                                reductions.backend, suggestion.base.description, reductions.suggested * 100, reductions.headSpace * 100))
        }
        let source = "\(profile) (\(chosen.architecture), \(chosen.precision) on \(chosen.backend))"
        try suggestion.yamlDocument(source: source, notes: notes).write(toFile: output, atomically: true, encoding: .utf8)
        print("wrote \(output); use it with 'search_space: \(output)' in a project config")
    }

    /// Latency of the base model, the cheapest member of the suggested space and of the default
    /// head space, on `latency` or the profile's backend.
    private func measureReductions(_ suggestion: SpaceSuggestion, profile: LayerProfile) throws
        -> (backend: String, suggested: Double, headSpace: Double)
    {
        let spec = latency ?? Self.latencySpec(ofProfileBackend: profile.backend)
        let backend = try LatencyBackendFactory.make(spec: spec, threads: profile.threads, seed: 0)
        let headCheapest = try ArchitectureSpace.cheapestMember(of: ArchitectureSpace.defaultSpace, base: suggestion.base)
        let base = try backend.measure(architecture: suggestion.base).median
        let suggested = try backend.measure(architecture: suggestion.smallest).median
        let head = try backend.measure(architecture: headCheapest).median
        print(String(format: "%@: base %@ %.2f ms; cheapest of the suggested space %@ %.2f ms (-%.1f %%); cheapest of the default head space %@ %.2f ms (-%.1f %%)",
                     backend.name, suggestion.base.description, base, suggestion.smallest.description, suggested, (1 - suggested / base) * 100,
                     headCheapest.description, head, (1 - head / base) * 100))
        return (backend.name, 1 - suggested / base, 1 - head / base)
    }

    /// The `latency.backend` spec that measures like the backend a profile was made on.
    static func latencySpec(ofProfileBackend name: String) -> String {
        if name.hasPrefix("torch-int8-") { return "int8 " + name.dropFirst("torch-int8-".count) }
        if name.hasPrefix("onnxruntime-") { return "onnxruntime " + name.dropFirst("onnxruntime-".count) }
        if name.hasPrefix("vela-") { return "vela " + name.dropFirst("vela-".count) }
        return "fp32"
    }
}
