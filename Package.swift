// swift-tools-version: 6.0
import PackageDescription

// AVX2 + FMA code generation for the SIMD kernels. Guarded so the manifest still
// resolves on other architectures (the kernels then fall back to portable SIMD).
#if arch(x86_64)
let simdSwiftFlags: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]
let simdCFlags: [CSetting] = [.unsafeFlags(["-mavx2", "-mfma"])]
#else
let simdSwiftFlags: [SwiftSetting] = []
let simdCFlags: [CSetting] = []
#endif

let package = Package(
    name: "TinySeek",
    platforms: [.macOS(.v15)],  // Synchronization.Atomic (WorkerPool)
    products: [
        .library(name: "TinySeek", targets: ["TinySeek"]),
        .library(name: "Tensor", targets: ["Tensor"]),
        .library(name: "TinySeekRuntime", targets: ["TinySeekRuntime"]),
        .executable(name: "tinyseek", targets: ["tinyseek"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // OpenBLAS through pkg-config (Debian: libopenblas-dev).
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // Header-only C helpers the kernels inline: software prefetch (no Swift intrinsic exists),
        // weight widening, the Q8_0 integer dot and int16 activation rounding.
        .systemLibrary(name: "CKernelSupport"),
        // Tensor math: Tensor type, SIMD kernels, BLAS matmul, safetensors reader.
        .target(
            name: "Tensor",
            dependencies: ["COpenBLAS", "CKernelSupport"],
            cSettings: simdCFlags,
            swiftSettings: simdSwiftFlags
        ),
        // The model: config, weights, RoPE/YaRN, MLA, MoE, decoder, latent cache, sampler,
        // and the op instrumentation every call site records into (cost formulas, recorder).
        .target(
            name: "TinySeek",
            dependencies: ["Tensor"],
            swiftSettings: simdSwiftFlags
        ),
        // Around the model: machine roofline (calibration), profiler reports, the analytic
        // model at real scale, and the expert-batching scheduler.
        .target(
            name: "TinySeekRuntime",
            dependencies: ["TinySeek", "Tensor"],
            swiftSettings: simdSwiftFlags
        ),
        .executableTarget(
            name: "tinyseek",
            dependencies: [
                "TinySeek", "TinySeekRuntime", "Tensor",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: simdSwiftFlags
        ),
        .testTarget(
            name: "TensorTests",
            dependencies: ["Tensor"],
            exclude: ["Fixtures"],
            swiftSettings: simdSwiftFlags
        ),
        // Test support: replaces malloc in the test binary to count each thread's allocations
        // (the decode loop must make none).
        .target(name: "AllocationCounter", path: "Tests/AllocationCounter"),
        .testTarget(
            name: "TinySeekTests",
            dependencies: ["TinySeek", "Tensor", "AllocationCounter"],
            exclude: ["Fixtures"],
            swiftSettings: simdSwiftFlags
        ),
        .testTarget(
            name: "TinySeekRuntimeTests",
            dependencies: ["TinySeekRuntime", "TinySeek", "Tensor"],
            swiftSettings: simdSwiftFlags
        ),
    ]
)
