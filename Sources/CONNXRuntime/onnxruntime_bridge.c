// ONNX Runtime through its C API table, loaded with dlopen (see include/onnxruntime_bridge.h).
#define _POSIX_C_SOURCE 200809L  // dlopen, strdup under strict ISO C as well

#include "onnxruntime_bridge.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// MARK: the part of the ONNX Runtime C API used here
//
// ONNX Runtime's C API is one struct of function pointers (OrtApi) that only ever grows at the
// end, so a function keeps its position in every later release. Rather than vendoring the
// 5000-line header, this file treats the table as an array of function pointers and calls the
// entries it needs by position, casting each to its real signature below.
//
// Positions: members of `struct OrtApi` counted from 0 in microsoft/onnxruntime
// include/onnxruntime/core/session/onnxruntime_c_api.h at ORT_API_VERSION 13 (ONNX Runtime
// 1.13), cross-checked against the static_asserts in onnxruntime/core/session/
// onnxruntime_c_api.cc (ReleaseCustomOpDomain at 101, ReleaseModelMetadata at 118,
// AddFreeDimensionOverrideByName at 124, ReleaseAvailableProviders at 126; SessionEndProfiling
// at 110 is counted up from the 101 and down from the 118 anchor). Version 13 is
// requested from GetApi: newer runtimes (the installed one is 1.32.0) serve every older
// version, and everything used here exists in it.
#define ORTB_API_VERSION 13u

enum {
    API_GET_ERROR_MESSAGE = 2,
    API_CREATE_ENV = 3,
    API_CREATE_SESSION = 7,
    API_RUN = 9,
    API_CREATE_SESSION_OPTIONS = 10,
    API_SET_SESSION_EXECUTION_MODE = 13,
    API_ENABLE_PROFILING = 14,
    API_SET_SESSION_GRAPH_OPTIMIZATION_LEVEL = 23,
    API_SET_INTRA_OP_NUM_THREADS = 24,
    API_SET_INTER_OP_NUM_THREADS = 25,
    API_SESSION_GET_INPUT_COUNT = 30,
    API_SESSION_GET_OUTPUT_COUNT = 31,
    API_SESSION_GET_INPUT_TYPE_INFO = 33,
    API_SESSION_GET_OUTPUT_TYPE_INFO = 34,
    API_SESSION_GET_INPUT_NAME = 36,
    API_SESSION_GET_OUTPUT_NAME = 37,
    API_CREATE_TENSOR_WITH_DATA_AS_ORT_VALUE = 49,
    API_GET_TENSOR_MUTABLE_DATA = 51,
    API_CAST_TYPE_INFO_TO_TENSOR_INFO = 55,
    API_GET_TENSOR_ELEMENT_TYPE = 60,
    API_GET_DIMENSIONS_COUNT = 61,
    API_GET_DIMENSIONS = 62,
    API_GET_TENSOR_SHAPE_ELEMENT_COUNT = 64,
    API_GET_TENSOR_TYPE_AND_SHAPE = 65,
    API_CREATE_CPU_MEMORY_INFO = 69,
    API_ALLOCATOR_FREE = 76,
    API_GET_ALLOCATOR_WITH_DEFAULT_OPTIONS = 78,
    API_RELEASE_ENV = 92,
    API_RELEASE_STATUS = 93,
    API_RELEASE_MEMORY_INFO = 94,
    API_RELEASE_SESSION = 95,
    API_RELEASE_VALUE = 96,
    API_RELEASE_TYPE_INFO = 98,
    API_RELEASE_TENSOR_TYPE_AND_SHAPE_INFO = 99,
    API_RELEASE_SESSION_OPTIONS = 100,
    API_SESSION_END_PROFILING = 110,
    API_ADD_SESSION_CONFIG_ENTRY = 130,
};

// Enum values from the same header (OrtLoggingLevel, ExecutionMode, GraphOptimizationLevel,
// OrtAllocatorType, OrtMemType); C enums there are int-sized.
enum {
    ORT_LOG_WARNING = 2,
    ORT_EXECUTION_SEQUENTIAL = 0,
    ORT_OPTIMIZE_ALL = 99,
    ORT_ARENA_ALLOCATOR = 1,
    ORT_MEM_TYPE_DEFAULT = 0,
};

// ONNX element type (TensorProto.DataType) of float32, the only one fed and read back.
enum { ORTB_ELEMENT_FLOAT = 1 };

// ONNX Runtime's opaque object types.
typedef struct ort_status ort_status;
typedef struct ort_env ort_env;
typedef struct ort_session ort_session;
typedef struct ort_session_options ort_session_options;
typedef struct ort_type_info ort_type_info;
typedef struct ort_tensor_info ort_tensor_info;
typedef struct ort_memory_info ort_memory_info;
typedef struct ort_value ort_value;
typedef struct ort_allocator ort_allocator;

typedef void (*ort_fn)(void);

// OrtApiBase, what OrtGetApiBase() returns: two function pointers.
typedef struct {
    const ort_fn *(*get_api)(uint32_t version);
    const char *(*get_version_string)(void);
} ort_api_base;

// The signatures of the table entries used (all return an OrtStatus*, NULL meaning success,
// except GetErrorMessage and the Release* functions).
typedef const char *(*fn_get_error_message)(const ort_status *);
typedef ort_status *(*fn_create_env)(int level, const char *log_id, ort_env **out);
typedef ort_status *(*fn_create_session)(const ort_env *, const char *path, const ort_session_options *,
                                         ort_session **out);
typedef ort_status *(*fn_run)(ort_session *, const void *run_options, const char *const *input_names,
                              const ort_value *const *inputs, size_t input_count,
                              const char *const *output_names, size_t output_count, ort_value **outputs);
typedef ort_status *(*fn_create_session_options)(ort_session_options **out);
typedef ort_status *(*fn_options_set_int)(ort_session_options *, int value);
typedef ort_status *(*fn_add_session_config_entry)(ort_session_options *, const char *key, const char *value);
typedef ort_status *(*fn_enable_profiling)(ort_session_options *, const char *profile_file_prefix);
typedef ort_status *(*fn_session_end_profiling)(ort_session *, ort_allocator *, char **out);
typedef ort_status *(*fn_session_get_count)(const ort_session *, size_t *out);
typedef ort_status *(*fn_session_get_type_info)(const ort_session *, size_t index, ort_type_info **out);
typedef ort_status *(*fn_session_get_name)(const ort_session *, size_t index, ort_allocator *, char **out);
typedef ort_status *(*fn_create_tensor_with_data)(const ort_memory_info *, void *data, size_t bytes,
                                                  const int64_t *shape, size_t rank, int element_type,
                                                  ort_value **out);
typedef ort_status *(*fn_get_tensor_mutable_data)(ort_value *, void **out);
typedef ort_status *(*fn_cast_type_info_to_tensor_info)(const ort_type_info *, const ort_tensor_info **out);
typedef ort_status *(*fn_get_tensor_element_type)(const ort_tensor_info *, int *out);
typedef ort_status *(*fn_get_dimensions_count)(const ort_tensor_info *, size_t *out);
typedef ort_status *(*fn_get_dimensions)(const ort_tensor_info *, int64_t *dims, size_t rank);
typedef ort_status *(*fn_get_tensor_shape_element_count)(const ort_tensor_info *, size_t *out);
typedef ort_status *(*fn_get_tensor_type_and_shape)(const ort_value *, ort_tensor_info **out);
typedef ort_status *(*fn_create_cpu_memory_info)(int allocator_type, int mem_type, ort_memory_info **out);
typedef ort_status *(*fn_allocator_free)(ort_allocator *, void *p);
typedef ort_status *(*fn_get_allocator_with_default_options)(ort_allocator **out);
typedef void (*fn_release)(void *);

/// Entry `index` of `runtime`'s API table as a function of type `type`.
#define ORT_CALL(runtime, type, index) ((type)(runtime)->api[(index)])
#define ORT_RELEASE(runtime, index, object) ORT_CALL(runtime, fn_release, index)(object)

// MARK: errors

static _Thread_local char last_error[4096];

const char *ortb_last_error(void) { return last_error; }

static void set_error(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void set_error(const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(last_error, sizeof last_error, format, arguments);
    va_end(arguments);
}

struct ortb_runtime_s {
    const ort_fn *api;
    ort_env *env;
    const char *version;
};

/// Returns 0 when `status` is success (NULL). Otherwise records "<context>: <ORT's message>",
/// releases the status and returns 1.
static int failed(const ortb_runtime *runtime, ort_status *status, const char *context, ...)
    __attribute__((format(printf, 3, 4)));
static int failed(const ortb_runtime *runtime, ort_status *status, const char *context, ...) {
    if (status == NULL) return 0;
    va_list arguments;
    va_start(arguments, context);
    int length = vsnprintf(last_error, sizeof last_error, context, arguments);
    va_end(arguments);
    if (length >= 0 && (size_t)length < sizeof last_error) {
        const char *message = ORT_CALL(runtime, fn_get_error_message, API_GET_ERROR_MESSAGE)(status);
        snprintf(last_error + length, sizeof last_error - (size_t)length, ": %s", message);
    }
    ORT_RELEASE(runtime, API_RELEASE_STATUS, status);
    return 1;
}

// MARK: runtime

ortb_runtime *ortb_runtime_open(const char *library_path) {
    const char *path = library_path != NULL ? library_path : "libonnxruntime.so";
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        set_error("cannot load the ONNX Runtime library: %s", dlerror());
        return NULL;
    }
    const ort_api_base *(*get_api_base)(void);
    // POSIX guarantees that dlsym's object pointer converts to a function pointer.
    *(void **)&get_api_base = dlsym(library, "OrtGetApiBase");
    if (get_api_base == NULL) {
        set_error("%s is not ONNX Runtime: it has no OrtGetApiBase symbol", path);
        dlclose(library);  // nothing of it has run, so unloading it again is safe
        return NULL;
    }
    const ort_api_base *base = get_api_base();
    const ort_fn *api = base->get_api(ORTB_API_VERSION);
    if (api == NULL) {
        set_error("ONNX Runtime %s at %s does not offer C API version %u (ONNX Runtime 1.13 or newer is needed)",
                  base->get_version_string(), path, ORTB_API_VERSION);
        return NULL;  // left loaded: ONNX Runtime's static state is initialised by now
    }
    ortb_runtime *runtime = calloc(1, sizeof *runtime);
    if (runtime == NULL) {
        set_error("out of memory");
        return NULL;
    }
    runtime->api = api;
    runtime->version = base->get_version_string();
    if (failed(runtime, ORT_CALL(runtime, fn_create_env, API_CREATE_ENV)(ORT_LOG_WARNING, "edgenas", &runtime->env),
               "cannot create an ONNX Runtime environment")) {
        free(runtime);
        return NULL;
    }
    return runtime;
}

void ortb_runtime_free(ortb_runtime *runtime) {
    if (runtime == NULL) return;
    ORT_RELEASE(runtime, API_RELEASE_ENV, runtime->env);
    free(runtime);
}

const char *ortb_runtime_version(const ortb_runtime *runtime) { return runtime->version; }

// MARK: session

typedef struct {
    char *name;
    int32_t element_type;  // TensorProto.DataType; 0 for a non-tensor (sequence, map)
    size_t rank;
    int64_t *shape;
} ortb_io;

struct ortb_session_s {
    const ortb_runtime *runtime;
    ort_session *session;
    ort_memory_info *cpu_memory;
    size_t count[2];
    ortb_io *io[2];
    // Name arrays in the layout Run wants.
    const char **names[2];
    int profiling;       // created with a profile prefix
    char *profile_path;  // set once profiling has ended
};

static void free_io(ortb_io *io, size_t count) {
    if (io == NULL) return;
    for (size_t i = 0; i < count; i++) {
        free(io[i].name);
        free(io[i].shape);
    }
    free(io);
}

void ortb_session_free(ortb_session *session) {
    if (session == NULL) return;
    const ortb_runtime *runtime = session->runtime;
    for (int kind = 0; kind < 2; kind++) {
        free_io(session->io[kind], session->count[kind]);
        free(session->names[kind]);
    }
    if (session->cpu_memory != NULL) ORT_RELEASE(runtime, API_RELEASE_MEMORY_INFO, session->cpu_memory);
    if (session->session != NULL) ORT_RELEASE(runtime, API_RELEASE_SESSION, session->session);
    free(session->profile_path);
    free(session);
}

/// Reads element type and declared shape from a type info (a non-tensor gets type 0, rank 0).
static int read_tensor_info(const ortb_runtime *runtime, const ort_type_info *type_info, ortb_io *io,
                            const char *what) {
    const ort_tensor_info *tensor = NULL;
    if (failed(runtime, ORT_CALL(runtime, fn_cast_type_info_to_tensor_info, API_CAST_TYPE_INFO_TO_TENSOR_INFO)(
                            type_info, &tensor),
               "cannot read the type of %s", what))
        return 1;
    if (tensor == NULL) return 0;
    int element_type = 0;
    if (failed(runtime, ORT_CALL(runtime, fn_get_tensor_element_type, API_GET_TENSOR_ELEMENT_TYPE)(tensor, &element_type),
               "cannot read the element type of %s", what) ||
        failed(runtime, ORT_CALL(runtime, fn_get_dimensions_count, API_GET_DIMENSIONS_COUNT)(tensor, &io->rank),
               "cannot read the rank of %s", what))
        return 1;
    io->element_type = element_type;
    io->shape = calloc(io->rank > 0 ? io->rank : 1, sizeof *io->shape);
    if (io->shape == NULL) {
        set_error("out of memory");
        return 1;
    }
    return failed(runtime, ORT_CALL(runtime, fn_get_dimensions, API_GET_DIMENSIONS)(tensor, io->shape, io->rank),
                  "cannot read the shape of %s", what);
}

/// Fills names, element types and shapes of the session's inputs (kind 0) or outputs (kind 1).
static int describe(ortb_session *session, ortb_io_kind kind, const char *model_path) {
    const ortb_runtime *runtime = session->runtime;
    const char *label = kind == ORTB_INPUT ? "input" : "output";
    size_t count = 0;
    if (failed(runtime,
               ORT_CALL(runtime, fn_session_get_count,
                        kind == ORTB_INPUT ? API_SESSION_GET_INPUT_COUNT : API_SESSION_GET_OUTPUT_COUNT)(session->session,
                                                                                                        &count),
               "cannot count the %ss of %s", label, model_path))
        return 1;
    session->io[kind] = calloc(count > 0 ? count : 1, sizeof(ortb_io));
    session->names[kind] = calloc(count > 0 ? count : 1, sizeof(const char *));
    if (session->io[kind] == NULL || session->names[kind] == NULL) {
        set_error("out of memory");
        return 1;
    }
    session->count[kind] = count;
    ort_allocator *allocator = NULL;
    if (failed(runtime,
               ORT_CALL(runtime, fn_get_allocator_with_default_options, API_GET_ALLOCATOR_WITH_DEFAULT_OPTIONS)(&allocator),
               "cannot get ONNX Runtime's default allocator"))
        return 1;
    for (size_t i = 0; i < count; i++) {
        ortb_io *io = &session->io[kind][i];
        char *name = NULL;
        if (failed(runtime,
                   ORT_CALL(runtime, fn_session_get_name,
                            kind == ORTB_INPUT ? API_SESSION_GET_INPUT_NAME : API_SESSION_GET_OUTPUT_NAME)(
                       session->session, i, allocator, &name),
                   "cannot read the name of %s %zu of %s", label, i, model_path))
            return 1;
        io->name = strdup(name);
        ORT_CALL(runtime, fn_allocator_free, API_ALLOCATOR_FREE)(allocator, name);  // cannot fail for this allocator
        if (io->name == NULL) {
            set_error("out of memory");
            return 1;
        }
        session->names[kind][i] = io->name;

        char what[512];
        snprintf(what, sizeof what, "%s '%s' of %s", label, io->name, model_path);
        ort_type_info *type_info = NULL;
        if (failed(runtime,
                   ORT_CALL(runtime, fn_session_get_type_info,
                            kind == ORTB_INPUT ? API_SESSION_GET_INPUT_TYPE_INFO : API_SESSION_GET_OUTPUT_TYPE_INFO)(
                       session->session, i, &type_info),
                   "cannot read the type of %s", what))
            return 1;
        int status = read_tensor_info(runtime, type_info, io, what);
        ORT_RELEASE(runtime, API_RELEASE_TYPE_INFO, type_info);
        if (status != 0) return 1;
    }
    return 0;
}

/// Session options for batch-1 latency on shared cores (see the header), profiling into
/// `profile_prefix` unless it is NULL.
static ort_session_options *latency_options(const ortb_runtime *runtime, int32_t intra_op_threads,
                                            const char *profile_prefix) {
    ort_session_options *options = NULL;
    if (failed(runtime, ORT_CALL(runtime, fn_create_session_options, API_CREATE_SESSION_OPTIONS)(&options),
               "cannot create ONNX Runtime session options"))
        return NULL;
    if (failed(runtime, ORT_CALL(runtime, fn_options_set_int, API_SET_INTRA_OP_NUM_THREADS)(options, intra_op_threads),
               "cannot set %d intra-op threads", intra_op_threads) ||
        failed(runtime, ORT_CALL(runtime, fn_options_set_int, API_SET_INTER_OP_NUM_THREADS)(options, 1),
               "cannot set one inter-op thread") ||
        failed(runtime,
               ORT_CALL(runtime, fn_options_set_int, API_SET_SESSION_EXECUTION_MODE)(options, ORT_EXECUTION_SEQUENTIAL),
               "cannot select sequential execution") ||
        failed(runtime,
               ORT_CALL(runtime, fn_options_set_int, API_SET_SESSION_GRAPH_OPTIMIZATION_LEVEL)(options, ORT_OPTIMIZE_ALL),
               "cannot enable all graph optimisations") ||
        failed(runtime,
               ORT_CALL(runtime, fn_add_session_config_entry, API_ADD_SESSION_CONFIG_ENTRY)(
                   options, "session.intra_op.allow_spinning", "0"),
               "cannot stop intra-op threads spinning") ||
        failed(runtime,
               ORT_CALL(runtime, fn_add_session_config_entry, API_ADD_SESSION_CONFIG_ENTRY)(
                   options, "session.inter_op.allow_spinning", "0"),
               "cannot stop inter-op threads spinning") ||
        (profile_prefix != NULL &&
         failed(runtime, ORT_CALL(runtime, fn_enable_profiling, API_ENABLE_PROFILING)(options, profile_prefix),
                "cannot enable profiling into %s", profile_prefix))) {
        ORT_RELEASE(runtime, API_RELEASE_SESSION_OPTIONS, options);
        return NULL;
    }
    return options;
}

ortb_session *ortb_session_create(ortb_runtime *runtime, const char *model_path, int32_t intra_op_threads,
                                  const char *profile_prefix) {
    if (intra_op_threads < 1) {
        set_error("intra-op threads must be at least 1, not %d", intra_op_threads);
        return NULL;
    }
    ortb_session *session = calloc(1, sizeof *session);
    if (session == NULL) {
        set_error("out of memory");
        return NULL;
    }
    session->runtime = runtime;
    session->profiling = profile_prefix != NULL;
    ort_session_options *options = latency_options(runtime, intra_op_threads, profile_prefix);
    if (options == NULL) {
        free(session);
        return NULL;
    }
    int status = failed(runtime,
                        ORT_CALL(runtime, fn_create_session, API_CREATE_SESSION)(runtime->env, model_path, options,
                                                                                &session->session),
                        "cannot load the model %s", model_path);
    ORT_RELEASE(runtime, API_RELEASE_SESSION_OPTIONS, options);  // the session keeps its own copy
    if (status != 0 ||
        failed(runtime,
               ORT_CALL(runtime, fn_create_cpu_memory_info, API_CREATE_CPU_MEMORY_INFO)(
                   ORT_ARENA_ALLOCATOR, ORT_MEM_TYPE_DEFAULT, &session->cpu_memory),
               "cannot describe CPU memory") ||
        describe(session, ORTB_INPUT, model_path) != 0 || describe(session, ORTB_OUTPUT, model_path) != 0) {
        ortb_session_free(session);
        return NULL;
    }
    return session;
}

size_t ortb_session_count(const ortb_session *session, ortb_io_kind kind) { return session->count[kind]; }

const char *ortb_session_name(const ortb_session *session, ortb_io_kind kind, size_t index) {
    return session->io[kind][index].name;
}

size_t ortb_session_rank(const ortb_session *session, ortb_io_kind kind, size_t index) {
    return session->io[kind][index].rank;
}

const int64_t *ortb_session_shape(const ortb_session *session, ortb_io_kind kind, size_t index) {
    return session->io[kind][index].shape;
}

// MARK: run

typedef struct {
    ort_value *value;
    size_t rank;
    int64_t *shape;
    size_t element_count;
    const float *data;
} ortb_output;

struct ortb_outputs_s {
    const ortb_runtime *runtime;
    size_t count;
    ortb_output *items;
};

void ortb_outputs_free(ortb_outputs *outputs) {
    if (outputs == NULL) return;
    for (size_t i = 0; i < outputs->count; i++) {
        free(outputs->items[i].shape);
        if (outputs->items[i].value != NULL) ORT_RELEASE(outputs->runtime, API_RELEASE_VALUE, outputs->items[i].value);
    }
    free(outputs->items);
    free(outputs);
}

/// Checks the input against the model's single float32 input; 0 when it fits.
static int check_input(const ortb_session *session, size_t element_count, const int64_t *shape, size_t rank) {
    if (session->count[ORTB_INPUT] != 1) {
        set_error("the model has %zu inputs; only models with exactly one input can be run", session->count[ORTB_INPUT]);
        return 1;
    }
    const ortb_io *input = &session->io[ORTB_INPUT][0];
    if (input->element_type != ORTB_ELEMENT_FLOAT) {
        set_error("input '%s' has element type %d; only float32 (1) inputs can be fed", input->name,
                  (int)input->element_type);
        return 1;
    }
    size_t expected = 1;
    for (size_t i = 0; i < rank; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && expected > SIZE_MAX / (size_t)shape[i])) {
            set_error("input '%s': dimension %zu is %lld", input->name, i, (long long)shape[i]);
            return 1;
        }
        expected *= (size_t)shape[i];
    }
    if (expected != element_count) {
        set_error("input '%s': its shape holds %zu values but %zu were given", input->name, expected, element_count);
        return 1;
    }
    return 0;
}

/// Reads shape and data of a float32 output value into `item`.
static int read_output(const ortb_runtime *runtime, const char *name, ortb_output *item) {
    ort_tensor_info *info = NULL;
    if (failed(runtime, ORT_CALL(runtime, fn_get_tensor_type_and_shape, API_GET_TENSOR_TYPE_AND_SHAPE)(item->value, &info),
               "output '%s' is not a tensor", name))
        return 1;
    int element_type = 0;
    int status = failed(runtime,
                        ORT_CALL(runtime, fn_get_tensor_element_type, API_GET_TENSOR_ELEMENT_TYPE)(info, &element_type),
                        "cannot read the element type of output '%s'", name) ||
                 failed(runtime, ORT_CALL(runtime, fn_get_dimensions_count, API_GET_DIMENSIONS_COUNT)(info, &item->rank),
                        "cannot read the rank of output '%s'", name);
    if (status == 0 && element_type != ORTB_ELEMENT_FLOAT) {
        set_error("output '%s' has element type %d; only float32 (1) outputs can be read", name, element_type);
        status = 1;
    }
    if (status == 0) {
        item->shape = calloc(item->rank > 0 ? item->rank : 1, sizeof *item->shape);
        if (item->shape == NULL) {
            set_error("out of memory");
            status = 1;
        }
    }
    status = status ||
             failed(runtime, ORT_CALL(runtime, fn_get_dimensions, API_GET_DIMENSIONS)(info, item->shape, item->rank),
                    "cannot read the shape of output '%s'", name) ||
             failed(runtime,
                    ORT_CALL(runtime, fn_get_tensor_shape_element_count, API_GET_TENSOR_SHAPE_ELEMENT_COUNT)(
                        info, &item->element_count),
                    "cannot count the values of output '%s'", name);
    ORT_RELEASE(runtime, API_RELEASE_TENSOR_TYPE_AND_SHAPE_INFO, info);
    if (status != 0) return 1;
    void *data = NULL;
    if (failed(runtime, ORT_CALL(runtime, fn_get_tensor_mutable_data, API_GET_TENSOR_MUTABLE_DATA)(item->value, &data),
               "cannot read the values of output '%s'", name))
        return 1;
    item->data = data;
    return 0;
}

ortb_outputs *ortb_session_run(ortb_session *session, const float *input, size_t element_count,
                               const int64_t *shape, size_t rank) {
    const ortb_runtime *runtime = session->runtime;
    if (check_input(session, element_count, shape, rank) != 0) return NULL;
    ort_value *input_value = NULL;
    // ORT wants a mutable pointer but only reads inputs; the value borrows the caller's buffer.
    if (failed(runtime,
               ORT_CALL(runtime, fn_create_tensor_with_data, API_CREATE_TENSOR_WITH_DATA_AS_ORT_VALUE)(
                   session->cpu_memory, (void *)input, element_count * sizeof(float), shape, rank, ORTB_ELEMENT_FLOAT,
                   &input_value),
               "cannot wrap the input as a tensor"))
        return NULL;

    ortb_outputs *outputs = calloc(1, sizeof *outputs);
    size_t count = session->count[ORTB_OUTPUT];
    ort_value **values = calloc(count > 0 ? count : 1, sizeof *values);
    if (outputs != NULL) outputs->items = calloc(count > 0 ? count : 1, sizeof *outputs->items);
    if (outputs == NULL || values == NULL || outputs->items == NULL) {
        set_error("out of memory");
        ORT_RELEASE(runtime, API_RELEASE_VALUE, input_value);
        if (outputs != NULL) free(outputs->items);
        free(outputs);
        free(values);
        return NULL;
    }
    outputs->runtime = runtime;
    const ort_value *inputs[1] = {input_value};
    int status = failed(runtime,
                        ORT_CALL(runtime, fn_run, API_RUN)(session->session, NULL, session->names[ORTB_INPUT], inputs, 1,
                                                           session->names[ORTB_OUTPUT], count, values),
                        "inference failed");
    ORT_RELEASE(runtime, API_RELEASE_VALUE, input_value);
    // Hand every value ORT produced to `outputs` first, so one free releases them all on any failure.
    outputs->count = count;
    for (size_t i = 0; i < count; i++) outputs->items[i].value = values[i];
    free(values);
    for (size_t i = 0; status == 0 && i < count; i++)
        status = read_output(runtime, session->names[ORTB_OUTPUT][i], &outputs->items[i]);
    if (status != 0) {
        ortb_outputs_free(outputs);
        return NULL;
    }
    return outputs;
}

size_t ortb_outputs_count(const ortb_outputs *outputs) { return outputs->count; }

size_t ortb_outputs_rank(const ortb_outputs *outputs, size_t index) { return outputs->items[index].rank; }

const int64_t *ortb_outputs_shape(const ortb_outputs *outputs, size_t index) { return outputs->items[index].shape; }

size_t ortb_outputs_element_count(const ortb_outputs *outputs, size_t index) {
    return outputs->items[index].element_count;
}

const float *ortb_outputs_data(const ortb_outputs *outputs, size_t index) { return outputs->items[index].data; }

// MARK: profiling

const char *ortb_session_end_profiling(ortb_session *session) {
    const ortb_runtime *runtime = session->runtime;
    if (!session->profiling) {
        set_error("profiling is not enabled for this session: create it with a profile prefix");
        return NULL;
    }
    // ONNX Runtime would answer a second call with an empty name and no error.
    if (session->profile_path != NULL) {
        set_error("profiling of this session already ended; its profile is %s", session->profile_path);
        return NULL;
    }
    ort_allocator *allocator = NULL;
    char *path = NULL;
    if (failed(runtime,
               ORT_CALL(runtime, fn_get_allocator_with_default_options, API_GET_ALLOCATOR_WITH_DEFAULT_OPTIONS)(&allocator),
               "cannot get ONNX Runtime's default allocator") ||
        failed(runtime, ORT_CALL(runtime, fn_session_end_profiling, API_SESSION_END_PROFILING)(session->session, allocator,
                                                                                               &path),
               "cannot end profiling"))
        return NULL;
    // An empty name is ONNX Runtime's answer when its profiler was not running.
    int empty = path[0] == '\0';
    session->profile_path = empty ? NULL : strdup(path);
    ORT_CALL(runtime, fn_allocator_free, API_ALLOCATOR_FREE)(allocator, path);  // cannot fail for this allocator
    if (empty) {
        set_error("ONNX Runtime wrote no profile: its profiler was not running");
        return NULL;
    }
    if (session->profile_path == NULL) {
        set_error("out of memory");
        return NULL;
    }
    return session->profile_path;
}
