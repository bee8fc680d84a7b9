import Foundation
import Testing
@testable import Torch

@Suite struct TensorTests {
    @Test func roundTripsSwiftArraysOfEachElementType() throws {
        #expect(try Tensor([1.5, -2, 3] as [Float]).floats() == [1.5, -2, 3])
        #expect(try Tensor([1, -2, 300] as [Int64]).int64s() == [1, -2, 300])
        #expect(try Tensor([7, 8] as [Int32]).toArray(of: Int32.self) == [7, 8])
        #expect(try Tensor([0, 255] as [UInt8]).toArray(of: UInt8.self) == [0, 255])
        let matrix = try Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
        #expect(matrix.shape == [2, 3])
        #expect(matrix.dtype == .float32)
        #expect(try matrix.to(.int64).dtype == .int64)
        #expect(try matrix.toArray(of: Double.self) == [1, 2, 3, 4, 5, 6])
    }

    /// DType's raw values must be libtorch's ScalarType codes, since they cross the C shim as is.
    @Test(arguments: DType.allCases.filter { !$0.isQuantized && $0 != .complex32 })
    func dtypeCodesMatchLibtorch(dtype: DType) throws {
        let tensor = try Tensor.zeros([2, 3], dtype: dtype)
        #expect(tensor.dtype == dtype)
        #expect(try tensor.rawBytes().count == 6 * dtype.byteWidth)
    }

    @Test func freeReleasesEarlyAndIsIdempotent() throws {
        let tensor = try Tensor.ones([4])
        tensor.free()
        tensor.free()
    }

    @Test func rejectsArrayThatDoesNotFillTheShape() {
        #expect(throws: TorchError.self) { try Tensor([1, 2, 3] as [Float], shape: [2, 2]) }
    }

    @Test func shapeMismatchThrowsLibtorchMessage() throws {
        let a = try Tensor.ones([2, 3])
        let b = try Tensor.ones([4])
        do {
            _ = try a + b
            Issue.record("adding [2, 3] and [4] must throw")
        } catch let error as TorchError {
            #expect(error.message.contains("must match the size of tensor b (4)"))
        }
        let weight = try Tensor.ones([8, 5, 3, 3])
        #expect(throws: TorchError.self) { try Functional.conv2d(Tensor.ones([1, 3, 8, 8]), weight: weight) }
        #expect(throws: TorchError.self) { try a.matmul(a) }
    }

    @Test func arithmeticBroadcastsAndMatchesHandValues() throws {
        let a = try Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
        let row = try Tensor([10, 20] as [Float])
        #expect(try (a + row).floats() == [11, 22, 13, 24])
        #expect(try (a - 1).floats() == [0, 1, 2, 3])
        #expect(try (2 * a).floats() == [2, 4, 6, 8])
        #expect(try (1 - a).floats() == [0, -1, -2, -3])
        #expect(try (12 / a).floats() == [12, 6, 4, 3])
        #expect(try a.matmul(a).floats() == [7, 10, 15, 22])
        #expect(try a.pow(2).floats() == [1, 4, 9, 16])
        #expect(try (-a).abs().sqrt().pow(2).floats().map { ($0 * 1000).rounded() / 1000 } == [1, 2, 3, 4])
        #expect(try a.clamp(min: 1.5, max: 3).floats() == [1.5, 2, 3, 3])
        #expect(try (a - 2.5).sign().floats() == [-1, -1, 1, 1])
    }

    @Test func reductionsAlongDimensions() throws {
        let a = try Tensor([1, 5, 3, 4, 2, 6] as [Float], shape: [2, 3])
        #expect(try a.sum().item() == 21)
        #expect(try a.sum(dims: [1]).floats() == [9, 12])
        #expect(try a.mean(dims: [0]).floats() == [2.5, 3.5, 4.5])
        #expect(try a.max().item() == 6)
        #expect(try a.min().item() == 1)
        let (values, indices) = try a.max(dim: 1)
        #expect(try values.floats() == [5, 6])
        #expect(try indices.int64s() == [1, 2])
        #expect(try a.argmax(dim: 0).int64s() == [1, 0, 1])
        let softmax = try a.softmax(dim: 1).sum(dims: [1]).floats()
        #expect(softmax.allSatisfy { Swift.abs($0 - 1) < 1e-6 })
        #expect(try a.logSoftmax(dim: 1).exp().sum().item() - 2 < 1e-5)
    }

    @Test func comparisonsWhereGatherAndMasks() throws {
        let a = try Tensor([1, 5, 3, 4] as [Float], shape: [2, 2])
        let mask = try a.gt(2.5)
        #expect(try mask.toArray(of: Bool.self) == [false, true, true, true])
        #expect(try Tensor.where(mask, a, Tensor.zeros([2, 2])).floats() == [0, 5, 3, 4])
        #expect(try a.maskedSelect(mask).floats() == [5, 3, 4])
        let index = try Tensor([1, 0] as [Int64], shape: [2, 1])
        #expect(try a.gather(dim: 1, index: index).floats() == [5, 3])
        #expect(try a.indexSelect(dim: 0, index: Tensor([1] as [Int64])).floats() == [3, 4])
    }

    @Test func shapeManipulation() throws {
        let a = try Tensor.arange(0, 12).reshape([2, 3, 2])
        #expect(try a.permute([2, 0, 1]).shape == [2, 2, 3])
        // transposed[0][0][1] = a[1][0][0] = 6
        #expect(try a.transpose(0, 2).contiguous().view([12]).floats()[1] == 6)
        #expect(throws: TorchError.self) { try a.transpose(0, 2).view([12]) }
        #expect(try a.flatten(startDim: 1).shape == [2, 6])
        #expect(try a.unsqueeze(0).squeeze(0).shape == [2, 3, 2])
        let pieces = try a.split(size: 2, dim: 1)
        #expect(pieces.map(\.shape) == [[2, 2, 2], [2, 1, 2]])
        let chunks = try Tensor.arange(0, 10).chunk(3, dim: 0)
        #expect(chunks.map(\.shape) == [[4], [4], [2]])
        #expect(try Tensor.cat(chunks, dim: 0).floats() == (0..<10).map(Float.init))
        #expect(try Tensor.stack([chunks[0], chunks[1]], dim: 0).shape == [2, 4])
        #expect(try a.narrow(dim: 1, start: 1, length: 2).shape == [2, 2, 2])
    }

    @Test func poolingAndUpsampling() throws {
        let image = try Tensor.arange(0, 16).reshape([1, 1, 4, 4])
        #expect(try Functional.maxPool2d(image, kernel: (2, 2)).floats() == [5, 7, 13, 15])
        #expect(try Functional.avgPool2d(image, kernel: (2, 2)).floats() == [2.5, 4.5, 10.5, 12.5])
        #expect(try Functional.adaptiveAvgPool2d(image, outputSize: (1, 1)).floats() == [7.5])
        let small = try Tensor([1, 2, 3, 4] as [Float], shape: [1, 1, 2, 2])
        #expect(try Functional.upsampleNearest(small, scale: 2).floats() == [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
    }

    @Test func pointwiseConvolutionMatchesLinearOverPixels() throws {
        let generator = try Generator(seed: 3)
        let input = try Tensor.normal([2, 5, 3, 4], generator: generator)
        let weight = try Tensor.normal([7, 5, 1, 1], generator: generator)
        let bias = try Tensor.normal([7], generator: generator)
        let convolved = try Functional.conv2d(input, weight: weight, bias: bias)
        // The same map as a fully connected layer applied to every pixel's channel vector (NHWC).
        let perPixel = try Functional.linear(input.permute([0, 2, 3, 1]), weight: weight.view([7, 5]), bias: bias)
            .permute([0, 3, 1, 2])
        #expect(convolved.shape == [2, 7, 3, 4])
        let difference = try (convolved - perPixel).abs().max().item()
        #expect(difference < 1e-5)
        // A channel slice (as ShuffleNet's split produces) goes through the same path.
        let slice = try Tensor.normal([2, 10, 3, 4], generator: generator).narrow(dim: 1, start: 5, length: 5)
        #expect(try Functional.conv2d(slice, weight: weight).shape == [2, 7, 3, 4])
    }

    @Test func reluInPlaceOverwritesItsInput() throws {
        let values = try Tensor([-1, 2, -3] as [Float])
        try values.reluInPlace()
        #expect(try values.floats() == [0, 2, 0])
    }

    @Test func lossesMatchClosedForms() throws {
        let input = try Tensor([0.5, 2.0] as [Float])
        let target = try Tensor([0.0, 0.0] as [Float])
        // smooth-L1 (beta 1): 0.5·0.5² = 0.125 and 2 − 0.5 = 1.5; mean 0.8125.
        #expect(try Functional.smoothL1Loss(input, target).item() == 0.8125)
        let probability = try Tensor([0.25] as [Float])
        let label = try Tensor([1.0] as [Float])
        #expect(Swift.abs(try Functional.binaryCrossEntropy(probability, label).item() - -Foundation.log(0.25)) < 1e-6)
        let logit = try Tensor([0.3] as [Float])
        let expected = -Foundation.log(1 / (1 + Foundation.exp(-0.3)))
        #expect(Swift.abs(try Functional.binaryCrossEntropyWithLogits(logit, label).item() - expected) < 1e-6)
        let logits = try Tensor([1, 2, 3] as [Float], shape: [1, 3])
        let classIndex = try Tensor([2] as [Int64])
        let logSumExp = Foundation.log(Foundation.exp(1.0) + Foundation.exp(2.0) + Foundation.exp(3.0))
        #expect(Swift.abs(try Functional.crossEntropy(logits, classIndex).item() - (logSumExp - 3)) < 1e-6)
        #expect(Swift.abs(try Functional.nllLoss(logits.logSoftmax(dim: 1), classIndex).item() - (logSumExp - 3)) < 1e-6)
    }

    @Test func seededGeneratorsAreReproducibleAndIndependent() throws {
        let first = try Tensor.normal([100], generator: Generator(seed: 42)).floats()
        let second = try Tensor.normal([100], generator: Generator(seed: 42)).floats()
        let other = try Tensor.normal([100], generator: Generator(seed: 43)).floats()
        #expect(first == second)
        #expect(first != other)
        let generator = try Generator(seed: 7)
        let uniform = try Tensor.uniform([1000], low: -2, high: 3, generator: generator).floats()
        #expect(uniform.allSatisfy { $0 >= -2 && $0 < 3 })
        let kaiming = try Tensor.kaimingNormal([64, 32, 3, 3], generator: generator).floats()
        let variance = kaiming.map { Double($0 * $0) }.reduce(0, +) / Double(kaiming.count)
        #expect(Swift.abs(variance - 2.0 / 288) < 0.1 * 2.0 / 288)
    }

    @Test func libraryFacts() {
        #expect(TorchLibrary.version.hasPrefix("1.") || TorchLibrary.version.hasPrefix("2."))
        #expect(!TorchLibrary.supportedQuantizedEngines.isEmpty)
        #expect(TorchLibrary.parallelInfo.contains("ATen"))
        let previous = Torch.threadCount
        Torch.setThreadCount(1)
        #expect(Torch.threadCount == 1)
        Torch.setThreadCount(previous)
    }
}

@Suite struct AutogradTests {
    @Test func gradientsOfSimpleExpression() throws {
        let x = try Tensor([1, 2, 3] as [Float]).requiresGrad(true)
        let loss = try (x * x).sum()
        try loss.backward()
        #expect(try x.grad?.floats() == [2, 4, 6])
        try x.zeroGrad()
        #expect(try x.grad?.floats() == [0, 0, 0])
    }

    @Test func noGradScopeStopsRecordingAndRestores() throws {
        let x = try Tensor([1, 2] as [Float]).requiresGrad(true)
        #expect(Torch.isGradEnabled)
        let y = try Torch.withNoGrad { try x * 2 }
        #expect(!y.requiresGrad)
        #expect(Torch.isGradEnabled)
        #expect(throws: TorchError.self) { try y.sum().backward() }
        struct Stop: Error {}
        #expect(throws: Stop.self) { try Torch.withNoGrad { throw Stop() } }
        #expect(Torch.isGradEnabled)
        #expect(try !x.detach().requiresGrad)
    }

    @Test func memoryStaysBoundedOverManyTrainingIterations() throws {
        let generator = try Generator(seed: 5)
        let layer = try Linear(inFeatures: 128, outFeatures: 64, generator: generator)
        func iteration() throws {
            let input = try Tensor.normal([32, 128], generator: generator)
            let loss = try layer(input).relu().mean()
            try loss.backward()
            try layer.zeroGrad()
        }
        for _ in 0..<500 { try iteration() }  // let the allocator reach its steady state
        // Leaking any activation handle (or the loss, whose graph keeps the activations) keeps
        // >= 8 KB (32x64 floats) per iteration alive: >= 40 MB in every window of 5,000. RSS is
        // process-wide and the tests running beside this one come and go (71 MB in one window on
        // a busy machine, and a window can also shrink when they free memory), so the median of
        // three windows is what counts.
        var growths: [Int] = []
        for _ in 0..<3 {
            let before = try residentBytes()
            for _ in 0..<5_000 { try iteration() }
            growths.append(try residentBytes() - before)
        }
        #expect(growths.sorted()[1] < 20 << 20, "resident memory grew by \(growths) bytes in three windows of 5,000 iterations")
    }

    private func residentBytes() throws -> Int {
        let fields = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8).split(separator: " ")
        return (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

@Suite struct FreedMemoryTests {
    /// Page faults of this process (all its threads: libtorch fills large tensors on its OpenMP workers).
    private static func pageFaults() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_minflt + usage.ru_majflt
    }

    /// A tensor as large as a detector's activations (48 MiB, over glibc's largest mmap threshold)
    /// allocated again after the previous one was freed reuses its memory: without the setting,
    /// glibc maps each one fresh and every page faults in again (12,288 faults each time, in every
    /// try). glibc keeps freed blocks per arena, and a thread whose arena another thread holds is
    /// served from another one, where no freed block waits: with the other tests allocating
    /// beside it, the test thread missed its block in every one of 100 tries in 3 of 5 runs. So
    /// the tensors are made on a thread of its own, which glibc gives an arena of its own. Page
    /// faults are counted for the whole process (libtorch fills large tensors on its OpenMP
    /// workers), other tests' included, so the fewest of up to 100 tries, 10 ms apart, counts.
    @Test func aFreedLargeTensorsMemoryIsReusedWithoutPageFaults() throws {
        #expect(Torch.keepFreedMemoryForReuse())
        let pages = 48 << 20 / 4096
        let fewest = try Self.onThreadOfItsOwn {
            try Tensor.ones([pages * 1024]).free()
            var fewest = Int.max
            for _ in 0..<100 where fewest >= pages / 4 {
                let before = Self.pageFaults()
                try Tensor.ones([pages * 1024]).free()
                fewest = min(fewest, Self.pageFaults() - before)
                usleep(10_000)
            }
            return fewest
        }
        #expect(fewest < pages / 4, "\(fewest) page faults for a tensor of \(pages) pages allocated again")
    }

    private static func onThreadOfItsOwn<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) throws -> Value {
        nonisolated(unsafe) var result: Result<Value, any Error>?
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            result = Result(catching: body)
            done.signal()
        }
        thread.start()
        done.wait()
        return try result!.get()
    }
}
