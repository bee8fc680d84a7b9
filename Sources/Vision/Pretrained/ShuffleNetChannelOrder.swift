/// How the channels of one ShuffleNetV2 stage in Megvii's layout (FastestDet's backbone) line
/// up with the same stage in torchvision's layout (EdgeNAS's `DetectorGraph`).
///
/// The two layouts compute the same family of functions but route channels differently:
/// Megvii's stride-1 unit splits its input into even and odd channels and concatenates
/// `[kept, transformed]`; torchvision's splits into first and second half and interleaves
/// `[kept, transformed]` (channel shuffle at the end). Every channel is made by one
/// convolution (the stride-2 unit's projection branch, or unit k's main branch), passes
/// through some units unchanged and is consumed by a later unit's main branch or leaves the
/// stage. Both layouts consume the same number of each convolution's channels at each unit,
/// so matching channels by (maker, unit that consumes them) gives an exact correspondence:
/// permuting the rows of each maker and the columns of each consumer turns Megvii weights into
/// torchvision weights that compute the same function.
struct ShuffleNetChannelOrder {
    /// The stride-2 unit's projection branch (`branch_proj` / `branch1`): EdgeNAS output row j
    /// is Megvii row `projectionRows[j]`.
    let projectionRows: [Int]
    /// Unit k's main branch (`branch_main` / `branch2`) output rows, per unit.
    let mainRows: [[Int]]
    /// Unit k's (k >= 1) main-branch input columns; entry 0 is unused (the stride-2 unit reads
    /// the whole stage input).
    let mainColumns: [[Int]]
    /// The stage's output: EdgeNAS channel i is Megvii channel `outputChannels[i]`.
    let outputChannels: [Int]

    /// A channel, named by the convolution that makes it (-1: the projection branch, k: unit
    /// k's main branch) and its row in that convolution.
    private struct Label: Hashable { var maker: Int; var row: Int }

    /// - Parameters:
    ///   - half: channels per branch (a stage's output channels / 2).
    ///   - units: units in the stage (the first has stride 2).
    init(half: Int, units: Int) throws(PretrainedWeightsError) {
        func made(by maker: Int) -> [Label] { (0..<half).map { Label(maker: maker, row: $0) } }
        func interleave(_ a: [Label], _ b: [Label]) -> [Label] { zip(a, b).flatMap { [$0, $1] } }

        // Simulate both layouts, remembering each unit's main-branch input and when each channel is consumed.
        var megvii = made(by: -1) + made(by: 0)
        var edgenas = interleave(made(by: -1), made(by: 0))
        var megviiInputs: [[Label]] = [[]], edgenasInputs: [[Label]] = [[]]
        var megviiConsumer: [Label: Int] = [:], edgenasConsumer: [Label: Int] = [:]
        for unit in 1..<max(1, units) {
            let odd = stride(from: 1, to: megvii.count, by: 2).map { megvii[$0] }
            let even = stride(from: 0, to: megvii.count, by: 2).map { megvii[$0] }
            megviiInputs.append(odd)
            for label in odd { megviiConsumer[label] = unit }
            megvii = even + made(by: unit)

            let kept = Array(edgenas[..<half]), transformed = Array(edgenas[half...])
            edgenasInputs.append(transformed)
            for label in transformed { edgenasConsumer[label] = unit }
            edgenas = interleave(kept, made(by: unit))
        }
        for label in megvii { megviiConsumer[label] = units }
        for label in edgenas { edgenasConsumer[label] = units }

        // Match channels of the same maker consumed at the same unit, in row order.
        struct Key: Hashable { var maker: Int; var consumer: Int }
        var megviiByKey: [Key: [Label]] = [:], edgenasByKey: [Key: [Label]] = [:]
        for (label, consumer) in megviiConsumer { megviiByKey[Key(maker: label.maker, consumer: consumer), default: []].append(label) }
        for (label, consumer) in edgenasConsumer { edgenasByKey[Key(maker: label.maker, consumer: consumer), default: []].append(label) }
        var toMegvii: [Label: Label] = [:]
        for (key, labels) in edgenasByKey {
            let partners = megviiByKey[key, default: []]
            guard partners.count == labels.count else { throw .layoutMismatch(half: half, units: units) }
            for (mine, theirs) in zip(labels.sorted { $0.row < $1.row }, partners.sorted { $0.row < $1.row }) {
                toMegvii[mine] = theirs
            }
        }

        func positions(of labels: [Label], in sequence: [Label]) -> [Int] {
            let index = Dictionary(uniqueKeysWithValues: sequence.enumerated().map { ($1, $0) })
            return labels.map { index[toMegvii[$0]!]! }
        }
        projectionRows = made(by: -1).map { toMegvii[$0]!.row }
        mainRows = (0..<units).map { unit in made(by: unit).map { toMegvii[$0]!.row } }
        mainColumns = (0..<units).map { unit in unit == 0 ? [] : positions(of: edgenasInputs[unit], in: megviiInputs[unit]) }
        outputChannels = positions(of: edgenas, in: megvii)
    }
}
