import ArgumentParser
import DetectionData
import Foundation

/// `edgenas data`: make synthetic detection data and check datasets on disk.
struct DataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Create synthetic person-detection data and validate detection datasets.",
        subcommands: [Synth.self, Check.self, Bench.self]
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
        @Flag(help: "Decode every image completely (finds truncated files; slower than the default header check).")
        var decode = false

        func run() async throws {
            let filter = classes == "all" ? nil : classes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let options = DatasetOptions(classFilter: filter, policy: strict ? .strict : .skipInvalidImages,
                                         imageCheck: decode ? .fullDecode : .header)
            let dataset = try VOCDataset(root: URL(fileURLWithPath: voc), split: split, options: options)
            print("classes: \(dataset.classNames.joined(separator: ", "))")
            print(dataset.report.description)
            for issue in dataset.report.skipped { print("  skipped: \(issue)") }
        }
    }

    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure data-pipeline throughput on this machine: JPEG decoding, synthetic generation, batch loading.",
            discussion: "Compare the decode figure with Benchmarks/data/decode_pillow.py run on the same images.")

        @Option(help: "Pascal VOC dataset whose split images are decoded and loaded.")
        var voc: String
        @Option(help: "Split name.")
        var split: String = "val"
        @Option(help: "Passes over the split when timing decoding (the best pass is reported).")
        var repeats: Int = 3
        @Option(help: "Synthetic images to write.")
        var synthImages: Int = 200
        @Option(help: "Network input size for the loader.")
        var inputSize: Int = 320
        @Option(help: "Loader batch size.")
        var batchSize: Int = 16

        func validate() throws { try requirePositive(["input-size": inputSize, "batch-size": batchSize]) }

        func run() async throws {
            let dataset = try VOCDataset(root: URL(fileURLWithPath: voc), split: split)
            var best = Double.infinity
            var megapixels = 0.0
            for _ in 0..<max(1, repeats) {
                let start = Date()
                megapixels = 0
                for item in dataset.items {
                    let image = try ImageCodec.decode(contentsOf: item.imageURL)
                    megapixels += Double(image.width * image.height) / 1e6
                }
                best = min(best, Date().timeIntervalSince(start))
            }
            print(String(format: "decode (1 thread): %d images in %.3f s: %.1f images/s, %.1f Mpixel/s",
                         dataset.count, best, Double(dataset.count) / best, megapixels / best))

            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-bench-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            var start = Date()
            try SyntheticDataWriter().write(to: directory, seed: 0, trainCount: synthImages, valCount: 0)
            var seconds = Date().timeIntervalSince(start)
            print(String(format: "synthetic write (all cores): %d images in %.3f s: %.1f images/s",
                         synthImages, seconds, Double(synthImages) / seconds))

            let loader = BatchLoader(dataset: dataset, batchSize: batchSize,
                                     augmentation: AugmentationConfig(outputWidth: inputSize, outputHeight: inputSize),
                                     shuffle: true, seed: 0)
            start = Date()
            var images = 0
            for try await batch in loader.batches(epoch: 0) { images += batch.batchSize }
            seconds = Date().timeIntervalSince(start)
            print(String(format: "loader (decode + augment + NCHW, all cores): %d images in %.3f s: %.1f images/s",
                         images, seconds, Double(images) / seconds))
        }
    }
}
