// Small C layer over libjpeg(-turbo) and libpng for the DetectionData module.
//
// Why this exists: libjpeg reports fatal errors through error_exit, whose default calls exit(),
// and the only way to regain control is setjmp/longjmp, which Swift cannot use. libpng's classic
// API has the same problem. These functions trap every library error in C and hand it back to
// Swift as a return code plus a message, so a corrupt file becomes a Swift error, never a crash.
//
// All functions return 0 on success and a non-zero code on failure, with a NUL-terminated
// message in `error` (at most `error_capacity` bytes). Pixel buffers that these functions
// allocate are released with ic_free.
#ifndef EDGENAS_IMAGE_CODECS_H
#define EDGENAS_IMAGE_CODECS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Decodes a JPEG held in memory to 8-bit interleaved RGB (grayscale and CMYK inputs are
/// converted). On success *pixels holds width*height*3 bytes owned by the caller.
int ic_decode_jpeg(const unsigned char *data, size_t size,
                   unsigned char **pixels, int *width, int *height,
                   char *error, size_t error_capacity);

/// Decodes a PNG held in memory to 8-bit interleaved RGB. Palette, grayscale and 16-bit inputs
/// are converted; an alpha channel is composited over black.
int ic_decode_png(const unsigned char *data, size_t size,
                  unsigned char **pixels, int *width, int *height,
                  char *error, size_t error_capacity);

/// Reads only the header of a JPEG and returns its size and component count.
int ic_probe_jpeg(const unsigned char *data, size_t size, int *width, int *height, int *components,
                  char *error, size_t error_capacity);

/// Reads only the header of a PNG and returns its size and channel count.
int ic_probe_png(const unsigned char *data, size_t size, int *width, int *height, int *components,
                 char *error, size_t error_capacity);

/// Encodes interleaved RGB (components 3) or grayscale (components 1) to a baseline JPEG.
int ic_encode_jpeg(const unsigned char *pixels, int width, int height, int components, int quality,
                   unsigned char **output, size_t *output_size,
                   char *error, size_t error_capacity);

/// Encodes interleaved RGB (components 3), RGBA (4) or grayscale (1) to PNG.
int ic_encode_png(const unsigned char *pixels, int width, int height, int components,
                  unsigned char **output, size_t *output_size,
                  char *error, size_t error_capacity);

/// Releases a buffer returned by any function above.
void ic_free(void *buffer);

#ifdef __cplusplus
}
#endif

#endif
