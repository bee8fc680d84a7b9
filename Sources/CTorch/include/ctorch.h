// C interface over libtorch. Pure C: opaque handles, no C++ types, no exceptions.
#ifndef CTORCH_H
#define CTORCH_H

#ifdef __cplusplus
extern "C" {
#endif

/// libtorch's version string, e.g. "1.13.1".
const char *ctorch_version(void);

#ifdef __cplusplus
}
#endif

#endif
