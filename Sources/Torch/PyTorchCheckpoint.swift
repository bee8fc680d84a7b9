import Foundation

extension TensorArchive {
    /// Reads the tensors of a checkpoint that Python's `torch.save` wrote in its zip format (a
    /// state dict, or a dict holding one, whose nested keys become "outer.inner"), without
    /// Python: the zip's `data.pkl` is read by `CheckpointUnpickler` and each tensor's bytes come
    /// from its storage entry. Storages saved on a GPU read like any other (they are plain bytes
    /// in the file). libtorch 1.13's own unpickler is not used because it reads every
    /// `collections.OrderedDict`, which is what `model.state_dict()` returns, as None.
    public init(pyTorchCheckpoint url: URL) throws {
        let path = url.path
        let bytes: [UInt8]
        do { bytes = [UInt8](try Data(contentsOf: url)) } catch {
            throw TensorArchiveError.unreadable(path: path, reason: "\(error.localizedDescription)")
        }
        let archive: StoredZipArchive
        do { archive = try StoredZipArchive(bytes: bytes, path: path) } catch let error as TensorArchiveError {
            throw TensorArchiveError.unreadable(path: path, reason: "not a PyTorch zip checkpoint written by torch.save (\(error))")
        }
        guard let pickleName = archive.entries.keys.filter({ $0 == "data.pkl" || $0.hasSuffix("/data.pkl") }).min() else {
            throw TensorArchiveError.unreadable(path: path, reason: "not a PyTorch zip checkpoint written by torch.save (no data.pkl inside)")
        }
        let prefix = String(pickleName.dropLast("data.pkl".count))
        if let order = archive.data(prefix + "byteorder"), String(decoding: order, as: UTF8.self) != "little" {
            throw TensorArchiveError.malformed(path: path, offset: 0, reason: "big-endian checkpoints are not supported")
        }
        var unpickler = CheckpointUnpickler(archive.data(pickleName)!, path: path)
        var entries: [(name: String, tensor: Tensor)] = []
        func collect(_ value: CheckpointUnpickler.Value, _ name: String) throws {
            switch value {
            case .tensor(let reference):
                entries.append((name, try Self.tensor(reference, named: name, archive: archive, prefix: prefix, path: path)))
            case .dictionary(let dictionary):
                for (key, item) in dictionary.items {
                    guard case .string(let key) = key else { continue }
                    try collect(item, name.isEmpty ? key : "\(name).\(key)")
                }
            default:
                break
            }
        }
        try collect(try unpickler.load(), "")
        guard !entries.isEmpty else {
            throw TensorArchiveError.unreadable(path: path, reason: "the checkpoint holds no tensors (expected a state dict: names to tensors)")
        }
        self.init(entries: entries)
    }

    /// The tensor a pickle reference describes, copied out of its storage entry. Shapes, strides
    /// and offsets come from the file, so each is checked before it is used: a crafted one is an
    /// error naming the tensor, never an out-of-bounds read or an overflow.
    private static func tensor(_ reference: CheckpointUnpickler.TensorReference, named name: String, archive: StoredZipArchive,
                               prefix: String, path: String) throws -> Tensor {
        func malformed(_ reason: String) -> TensorArchiveError { .malformed(path: path, offset: 0, reason: "'\(name)': \(reason)") }
        let width = reference.dtype.byteWidth
        guard let storage = archive.data("\(prefix)data/\(reference.storageKey)") else { throw malformed("storage \(reference.storageKey) is missing") }
        let (storageBytes, storageOverflow) = reference.storageElements.multipliedReportingOverflow(by: width)
        guard !storageOverflow, storage.count >= storageBytes else {
            throw malformed("storage \(reference.storageKey) has \(storage.count) bytes, \(reference.storageElements) elements need more")
        }
        let shape = reference.shape, strides = reference.strides
        guard shape.count == strides.count, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }), reference.offset >= 0 else {
            throw malformed("size \(shape), stride \(strides), offset \(reference.offset) do not describe a view")
        }
        var count = 1, last = reference.offset
        for (size, stride) in zip(shape, strides) {
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            let (reach, reachOverflow) = (size == 0 ? 0 : size - 1).multipliedReportingOverflow(by: stride)
            guard !overflow, !reachOverflow, !last.addingReportingOverflow(reach).overflow else { throw malformed("size \(shape) overflows") }
            count = product
            last += reach
        }
        guard count == 0 || last < reference.storageElements else {
            throw malformed("size \(shape), stride \(strides), offset \(reference.offset) reach past the storage's \(reference.storageElements) elements")
        }
        let base = storage.startIndex
        var payload = [UInt8]()
        payload.reserveCapacity(count * width)
        // Row-major walk over the view; a contiguous view is one copy.
        var contiguous = true, expected = 1
        for (size, stride) in zip(shape, strides).reversed() where size > 1 {
            if stride != expected { contiguous = false }
            expected *= size
        }
        if contiguous {
            payload += storage[(base + reference.offset * width)..<(base + (reference.offset + count) * width)]
        } else {
            var index = [Int](repeating: 0, count: shape.count)
            for _ in 0..<count {
                var element = reference.offset
                for axis in index.indices { element += index[axis] * strides[axis] }
                let start = base + element * width
                payload += storage[start..<(start + width)]
                for axis in stride(from: shape.count - 1, through: 0, by: -1) {
                    index[axis] += 1
                    if index[axis] < shape[axis] { break }
                    index[axis] = 0
                }
            }
        }
        return try Tensor.fromRawBytes(payload, shape: shape, dtype: reference.dtype)
    }
}
