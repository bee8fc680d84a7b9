import ArgumentParser
import DetectionData
import Foundation

/// `edgenas data`: make synthetic detection data and check datasets on disk.
struct DataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Create synthetic person-detection data and validate detection datasets.",
        subcommands: [Synth.self, Check.self]
    )

    struct Synth: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a seeded synthetic person dataset in the Pascal VOC layout.")

        @Option(help: "Output directory (created if missing).")
        var output: String
        @Option(help: "Random seed; the same seed writes identical files.")
        var seed: UInt64 = 0
        @Option(help: "Number of training images.")
        var train: Int = 400
        @Option(help: "Number of validation images.")
        var val: Int = 100
        @Option(help: "Image width and height in pixels.")
        var size: Int = 320
        @Option(help: "Smallest figure box height in pixels.")
        var minHeight: Double = 40
        @Option(help: "Largest figure box height in pixels.")
        var maxHeight: Double = 200
        @Option(help: "Largest number of figures per image.")
        var maxFigures: Int = 4
        @Option(help: "Image format: jpeg or png.")
        var format: String = "jpeg"

        func run() async throws {
            guard let imageFormat = ImageFormat(rawValue: format.lowercased()) else {
                throw ValidationError("--format must be jpeg or png, not '\(format)'")
            }
            guard minHeight <= maxHeight else { throw ValidationError("--min-height must not exceed --max-height") }
            guard maxFigures >= 1 else { throw ValidationError("--max-figures must be at least 1") }
            var config = SyntheticDataConfig()
            config.imageWidth = size
            config.imageHeight = size
            config.figureHeight = minHeight...maxHeight
            config.figuresPerImage = 1...maxFigures
            config.format = imageFormat
            let start = Date()
            let summary = try SyntheticDataWriter(config: config)
                .write(to: URL(fileURLWithPath: output), seed: seed, trainCount: train, valCount: val)
            let seconds = Date().timeIntervalSince(start)
            print("wrote \(summary.trainImages) train images (\(summary.trainObjects) persons) and "
                + "\(summary.valImages) val images (\(summary.valObjects) persons) to \(output) "
                + "in \(String(format: "%.1f", seconds)) s")
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load a Pascal VOC dataset split, validate every file and print the loading report.")

        @Option(help: "Dataset root (with JPEGImages/, Annotations/, ImageSets/Main/).")
        var voc: String
        @Option(help: "Split name (ImageSets/Main/<split>.txt).")
        var split: String = "val"
        @Option(help: "Classes to keep, comma separated; 'all' keeps every class.")
        var classes: String = "person"
        @Flag(help: "Stop at the first invalid file instead of skipping and counting it.")
        var strict = false

        func run() async throws {
            let filter = classes == "all" ? nil : classes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let options = DatasetOptions(classFilter: filter, policy: strict ? .strict : .skipInvalidImages)
            let dataset = try VOCDataset(root: URL(fileURLWithPath: voc), split: split, options: options)
            print("classes: \(dataset.classNames.joined(separator: ", "))")
            print(dataset.report.description)
            for issue in dataset.report.skipped { print("  skipped: \(issue)") }
        }
    }
}
