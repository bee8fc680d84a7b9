// C bridge to the ONNX Runtime C API, loaded at run time. Pure C: opaque handles only.
//
// Why this exists: EdgeNAS measures latency of exported .onnx models on ONNX Runtime, but the
// package must build (and every other backend must work) on machines without it. So nothing
// links against libonnxruntime: ortb_runtime_open() dlopen()s it, asks OrtGetApiBase() for the
// C API table and calls the few functions this file needs through it. Every OrtStatus failure
// becomes a message (ORT's own text plus what was being done) instead of a crash.
//
// Conventions
// - Failure: functions returning a handle return NULL, and ortb_last_error() then holds the
//   message. It is per thread, so concurrent callers do not see each other's errors; copy it
//   before the next ortb_* call.
// - Handles are owned by the caller and released exactly once with the matching *_free.
//   A session must be freed before the runtime it was created from.
// - Sessions run at batch-1 latency settings: intra-op threads as given, one inter-op thread,
//   sequential execution, all graph optimisations, and thread pools that sleep instead of
//   spinning (idle spinning workers collapse throughput on shared cores).
// - Only float32 tensors are fed and read back; a model with other input or output types loads
//   (its names and shapes can be read) but fails to run with a message naming the tensor.
#ifndef EDGENAS_ONNXRUNTIME_BRIDGE_H
#define EDGENAS_ONNXRUNTIME_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A loaded libonnxruntime with its C API table and one logging environment.
typedef struct ortb_runtime_s ortb_runtime;
/// A model loaded into an inference session, with its input/output names and shapes.
typedef struct ortb_session_s ortb_session;
/// The output tensors of one run.
typedef struct ortb_outputs_s ortb_outputs;

typedef enum { ORTB_INPUT = 0, ORTB_OUTPUT = 1 } ortb_io_kind;

/// The message of the last failure on this thread ("" when none happened yet).
const char *ortb_last_error(void);

// MARK: runtime

/// dlopen()s `library_path` (a file path, or a bare name the dynamic loader searches for;
/// NULL means "libonnxruntime.so"), checks that it is ONNX Runtime with a C API this bridge
/// can use, and creates an environment that logs warnings and worse to stderr. The library
/// stays loaded for the rest of the process even after ortb_runtime_free (ONNX Runtime keeps
/// process-wide state that is not safe to unload).
ortb_runtime *ortb_runtime_open(const char *library_path);
void ortb_runtime_free(ortb_runtime *runtime);
/// The library's version string, e.g. "1.32.0" (valid while `runtime` lives).
const char *ortb_runtime_version(const ortb_runtime *runtime);

// MARK: session

/// Loads the model at `model_path` with `intra_op_threads` (>= 1) threads inside operators.
/// A missing or invalid model fails with ONNX Runtime's message and the path.
///
/// `profile_prefix` NULL: no profiling. Otherwise ONNX Runtime's profiler records every run of
/// the session (one event per executed node and per run, see ortb_session_end_profiling) and
/// writes them to "<profile_prefix>_<date>_<time>.json" when profiling ends; the timestamp is
/// taken at session creation, with millisecond resolution, so concurrent sessions need
/// distinct prefixes. The prefix's directory must exist: ONNX Runtime does not create it and
/// does not report failing to write there.
ortb_session *ortb_session_create(ortb_runtime *runtime, const char *model_path, int32_t intra_op_threads,
                                  const char *profile_prefix);
void ortb_session_free(ortb_session *session);

size_t ortb_session_count(const ortb_session *session, ortb_io_kind kind);
/// The name of input/output `index` (valid while `session` lives).
const char *ortb_session_name(const ortb_session *session, ortb_io_kind kind, size_t index);
/// The rank of input/output `index` (0 for a scalar or a non-tensor).
size_t ortb_session_rank(const ortb_session *session, ortb_io_kind kind, size_t index);
/// The declared dimensions of input/output `index`, `rank` of them; -1 marks a symbolic
/// dimension such as the batch (valid while `session` lives).
const int64_t *ortb_session_shape(const ortb_session *session, ortb_io_kind kind, size_t index);

// MARK: run

/// Runs the model on one float32 input: `element_count` floats in row-major order with dims
/// `shape` (`rank` of them, no -1). The model must have exactly one input, of float32, and
/// only float32 outputs. The input is read, never kept. Returns all outputs in the model's order.
ortb_outputs *ortb_session_run(ortb_session *session, const float *input, size_t element_count,
                               const int64_t *shape, size_t rank);
size_t ortb_outputs_count(const ortb_outputs *outputs);
size_t ortb_outputs_rank(const ortb_outputs *outputs, size_t index);
/// Dims of output `index` (`rank` of them; valid while `outputs` lives).
const int64_t *ortb_outputs_shape(const ortb_outputs *outputs, size_t index);
size_t ortb_outputs_element_count(const ortb_outputs *outputs, size_t index);
/// The values of output `index`, `element_count` floats (valid while `outputs` lives).
const float *ortb_outputs_data(const ortb_outputs *outputs, size_t index);
void ortb_outputs_free(ortb_outputs *outputs);

// MARK: profiling

/// Ends profiling of a session created with a profile prefix: ONNX Runtime writes the JSON file
/// (a Chrome-trace array of events) and stops recording. Returns the path it wrote (valid while
/// `session` lives). Fails when the session was created without a prefix, and on a second
/// call (ONNX Runtime profiles a session once). Runs still in flight on other threads may be
/// partly recorded. Not safe to call concurrently with itself on one session.
const char *ortb_session_end_profiling(ortb_session *session);

#ifdef __cplusplus
}
#endif

#endif
