import DetectionData
import Foundation
import Testing

/// Command-line mistakes end in a usage error that names the option, not in a crash.
@Suite(.serialized)
struct CommandLineErrorTests {
    @Test func nonPositiveSizesAreUsageErrors() throws {
        let train = try DoctorCommandTests.edgenas(["train", "--data", "/nonexistent", "--batch-size", "0"])
        #expect(train.status == 64, "\(train.output)")
        #expect(train.output.contains("--batch-size must be at least 1, got 0"), "\(train.output)")
        let select = try DoctorCommandTests.edgenas(["select-estimator", "--data", "/nonexistent", "--proxy-batch-size", "0"])
        #expect(select.status == 64 && select.output.contains("--proxy-batch-size must be at least 1, got 0"), "\(select.output)")
    }

    /// A supernet distils from the network it starts from, and its space is read before training.
    @Test func aSupernetNeedsItsStartAndAReadableSpace() throws {
        let noStart = try DoctorCommandTests.edgenas(["train", "--data", "/nonexistent", "--supernet"])
        #expect(noStart.status == 64 && noStart.output.contains("--supernet distils from the network it starts from: give --init"), "\(noStart.output)")
        let noSupernet = try DoctorCommandTests.edgenas(["train", "--data", "/nonexistent", "--search-space", "space.yaml"])
        #expect(noSupernet.status == 64 && noSupernet.output.contains("--search-space is the supernet's space: add --supernet"), "\(noSupernet.output)")
    }

    /// Multi-scale widths are checked before any data is read.
    @Test func multiScaleWidthsAreMultiplesOfTheStride() throws {
        let wrong = try DoctorCommandTests.edgenas(["train", "--data", "/nonexistent", "--multi-scale", "224,250"])
        #expect(wrong.status == 64 && wrong.output.contains("--multi-scale takes input widths that are positive multiples of 32, comma separated; '250' is not one"),
                "\(wrong.output)")
    }

    /// `--to` names the model formats; `--format` stays the dataset's.
    @Test func anUnknownExportFormatIsAUsageError() throws {
        let run = try DoctorCommandTests.edgenas(["export", "--data", "/nonexistent", "--checkpoint", "/nonexistent", "--to", "onnx,coreml"])
        #expect(run.status == 64 && run.output.contains("--to must be onnx, tflite or onnx,tflite, not 'onnx,coreml'"), "\(run.output)")
    }

    @Test func aPredictorSampleLargerThanTheSpaceIsAUsageError() throws {
        let run = try DoctorCommandTests.edgenas(["latency", "fit-predictor", "--count", "100000", "--output", "/nonexistent/predictor.json"])
        #expect(run.status == 64, "\(run.output)")
        #expect(run.output.contains("but the head space has only 320 architectures"), "\(run.output)")
    }

    /// A cluster gives the storage URL in EDGENAS_STORAGE (from a secret), never on a command line.
    @Test func theStorageCanComeFromTheEnvironment() throws {
        let database = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-env-\(UUID().uuidString).db")
        defer { try? FileManager.default.removeItem(at: database) }
        let without = try DoctorCommandTests.edgenas(["study", "show", "--study", "nope"], environment: ["EDGENAS_STORAGE": ""])
        #expect(without.status == 64 && without.output.contains("--storage or $EDGENAS_STORAGE"), "\(without.output)")
        let with = try DoctorCommandTests.edgenas(["study", "show", "--study", "nope"], environment: ["EDGENAS_STORAGE": "sqlite://\(database.path)"])
        #expect(with.status != 0 && with.output.contains("study 'nope' does not exist"), "\(with.output)")
        let worker = try DoctorCommandTests.edgenas(["worker", "--study", "nope"], environment: ["EDGENAS_STORAGE": ""])
        #expect(worker.status == 64 && worker.output.contains("give --config, or the study's --storage"), "\(worker.output)")
    }

    /// The config's `latency.backend` grammar works on the command line too.
    @Test func latencyMeasureTakesTheConfigsSpecs() throws {
        let run = try DoctorCommandTests.edgenas(["latency", "measure", "--latency", "int8", "k3-g8-c24-w224"])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("k3-g8-c24-w224\ttorch-int8"), "\(run.output)")
        let wrong = try DoctorCommandTests.edgenas(["latency", "measure", "--latency", "int8 tpu"])
        #expect(wrong.status == 64 && wrong.output.contains("one of this libtorch's engines"), "\(wrong.output)")
    }

    /// `--against` times each network beside a reference; only a backend in this process can.
    @Test func latencyMeasureAgainstAReferencePrintsTheRatio() throws {
        let run = try DoctorCommandTests.edgenas(["latency", "measure", "--latency", "fp32", "--against", "k3-g8-c24-w256", "k3-g8-c24-w224"])
        #expect(run.status == 0, "\(run.output)")
        let row = try #require(run.output.split(separator: "\n").first { $0.hasPrefix("k3-g8-c24-w224\tk3-g8-c24-w256\ttorch-fp32\t") })
        let ratio = try #require(Double(row.split(separator: "\t")[3]))
        #expect(ratio > 0.2 && ratio < 2, "\(run.output)")
        let board = try DoctorCommandTests.edgenas(["latency", "measure", "--latency", "command echo {model}", "--against", "k3-g8-c24-w256"])
        #expect(board.status == 64 && board.output.contains("--against needs a backend that runs in this process"), "\(board.output)")
    }
}

/// The dataset commands read every format a project config reads, not only Pascal VOC.
@Suite(.serialized)
struct DatasetFormatCommandTests {
    /// The synthetic VOC set rewritten in YOLO layout (images/<split>/, labels/<split>/*.txt).
    static func yoloCopy(of voc: URL, to root: URL) throws {
        for split in ["train", "val"] {
            let dataset = try VOCDataset(root: voc, split: split)
            let images = root.appendingPathComponent("images/\(split)"), labels = root.appendingPathComponent("labels/\(split)")
            try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: labels, withIntermediateDirectories: true)
            for item in dataset.items {
                try FileManager.default.copyItem(at: item.imageURL, to: images.appendingPathComponent(item.imageURL.lastPathComponent))
                let lines = item.objects.map { object in
                    let box = object.box, width = Double(item.width), height = Double(item.height)
                    return String(format: "0 %.6f %.6f %.6f %.6f", (box.x0 + box.x1) / 2 / width, (box.y0 + box.y1) / 2 / height,
                                  box.width / width, box.height / height)
                }
                try Data(lines.joined(separator: "\n").utf8).write(to: labels.appendingPathComponent("\(item.id).txt"))
            }
        }
    }

    @Test func trainReadsAYOLODataset() throws {
        let directory = try temporaryDirectory("yolo-train")
        defer { try? FileManager.default.removeItem(at: directory) }
        let voc = directory.appendingPathComponent("voc"), yolo = directory.appendingPathComponent("yolo")
        _ = try SyntheticDataWriter().write(to: voc, seed: 2, trainCount: 6, valCount: 3)
        try Self.yoloCopy(of: voc, to: yolo)
        let run = try DoctorCommandTests.edgenas([
            "train", "--data", yolo.path, "--format", "yolo", "--arch", "k3-g8-c24-w224", "--epochs", "1", "--batch-size", "3",
            "--output", directory.appendingPathComponent("run").path,
        ])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("AP@0.5"), "\(run.output)")
        // eval scores the split --val-split names.
        let evaluated = try DoctorCommandTests.edgenas([
            "eval", "--data", yolo.path, "--format", "yolo", "--checkpoint", directory.appendingPathComponent("run").path, "--val-split", "train",
        ])
        #expect(evaluated.status == 0 && evaluated.output.contains("/train: AP@0.5") && evaluated.output.contains("(6 images"), "\(evaluated.output)")

        let wrong = try DoctorCommandTests.edgenas(["train", "--data", yolo.path, "--format", "kitti"])
        #expect(wrong.status == 64 && wrong.output.contains("--format must be one of voc, yolo, coco"), "\(wrong.output)")
        let coco = try DoctorCommandTests.edgenas(["train", "--data", yolo.path, "--format", "coco"])
        #expect(coco.status == 64 && coco.output.contains("--train-images and --val-images"), "\(coco.output)")
    }
}
