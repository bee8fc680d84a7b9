#include "image_codecs.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

static void copy_message(char *error, size_t capacity, const char *message) {
    if (error == NULL || capacity == 0) return;
    snprintf(error, capacity, "%s", message);
}

// MARK: - JPEG

// libjpeg error manager that records the message and jumps back instead of calling exit().
typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    int warnings;
    char first_warning[JMSG_LENGTH_MAX];
} trapping_error_mgr;

static void trap_error_exit(j_common_ptr info) {
    trapping_error_mgr *manager = (trapping_error_mgr *)info->err;
    (*info->err->format_message)(info, manager->message);
    longjmp(manager->jump, 1);
}

// libjpeg reports missing image data only as a warning (on stderr) and fills the rest of the
// image with grey. Those data-loss warnings are recorded so that decoding fails; benign warnings
// such as "extraneous bytes before marker", common in real datasets, are ignored because the
// pixels are intact.
static void trap_emit_message(j_common_ptr info, int level) {
    trapping_error_mgr *manager = (trapping_error_mgr *)info->err;
    if (level >= 0) return;  // trace messages
    const int code = info->err->msg_code;
    if (code != JWRN_JPEG_EOF && code != JWRN_HIT_MARKER && code != JWRN_MUST_RESYNC) return;
    if (manager->warnings == 0) (*info->err->format_message)(info, manager->first_warning);
    manager->warnings += 1;
}

static void install_trap(j_common_ptr info, trapping_error_mgr *manager) {
    info->err = jpeg_std_error(&manager->base);
    manager->base.error_exit = trap_error_exit;
    manager->base.emit_message = trap_emit_message;
    manager->message[0] = '\0';
    manager->first_warning[0] = '\0';
    manager->warnings = 0;
}

int ic_probe_jpeg(const unsigned char *data, size_t size, int *width, int *height, int *components,
                  char *error, size_t error_capacity) {
    struct jpeg_decompress_struct info;
    trapping_error_mgr manager;
    install_trap((j_common_ptr)&info, &manager);
    if (setjmp(manager.jump)) {
        copy_message(error, error_capacity, manager.message);
        jpeg_destroy_decompress(&info);
        return 1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, (unsigned long)size);
    jpeg_read_header(&info, TRUE);
    *width = (int)info.image_width;
    *height = (int)info.image_height;
    *components = info.num_components;
    jpeg_destroy_decompress(&info);
    return 0;
}

int ic_decode_jpeg(const unsigned char *data, size_t size,
                   unsigned char **pixels, int *width, int *height,
                   char *error, size_t error_capacity) {
    struct jpeg_decompress_struct info;
    trapping_error_mgr manager;
    // volatile: these are modified between setjmp and a possible longjmp.
    unsigned char *volatile output = NULL;
    unsigned char *volatile row = NULL;
    install_trap((j_common_ptr)&info, &manager);
    if (setjmp(manager.jump)) {
        copy_message(error, error_capacity, manager.message);
        free(output);
        free(row);
        jpeg_destroy_decompress(&info);
        return 1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, (unsigned long)size);
    jpeg_read_header(&info, TRUE);
    int cmyk = info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK;
    info.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&info);
    const size_t w = info.output_width, h = info.output_height;
    output = malloc(w * h * 3);
    row = malloc(w * (size_t)info.output_components);
    if (output == NULL || row == NULL) {
        copy_message(error, error_capacity, "out of memory");
        free(output);
        free(row);
        jpeg_destroy_decompress(&info);
        return 2;
    }
    // Adobe writes CMYK JPEGs with inverted values; an Adobe marker tells us so.
    const int inverted = info.saw_Adobe_marker;
    while (info.output_scanline < info.output_height) {
        size_t y = info.output_scanline;
        JSAMPROW rows[1] = {cmyk ? row : output + y * w * 3};
        jpeg_read_scanlines(&info, rows, 1);
        if (cmyk) {
            for (size_t x = 0; x < w; x++) {
                int c = row[4 * x], m = row[4 * x + 1], yy = row[4 * x + 2], k = row[4 * x + 3];
                if (!inverted) { c = 255 - c; m = 255 - m; yy = 255 - yy; k = 255 - k; }
                output[(y * w + x) * 3 + 0] = (unsigned char)(c * k / 255);
                output[(y * w + x) * 3 + 1] = (unsigned char)(m * k / 255);
                output[(y * w + x) * 3 + 2] = (unsigned char)(yy * k / 255);
            }
        }
    }
    jpeg_finish_decompress(&info);
    free(row);
    row = NULL;
    if (manager.warnings > 0) {
        copy_message(error, error_capacity, manager.first_warning);
        free(output);
        jpeg_destroy_decompress(&info);
        return 3;
    }
    *pixels = output;
    *width = (int)w;
    *height = (int)h;
    jpeg_destroy_decompress(&info);
    return 0;
}

int ic_encode_jpeg(const unsigned char *pixels, int width, int height, int components, int quality,
                   unsigned char **output, size_t *output_size,
                   char *error, size_t error_capacity) {
    if (components != 1 && components != 3) {
        copy_message(error, error_capacity, "JPEG encoding needs 1 or 3 components");
        return 4;
    }
    struct jpeg_compress_struct info;
    trapping_error_mgr manager;
    unsigned char *volatile buffer = NULL;
    unsigned long buffer_size = 0;
    install_trap((j_common_ptr)&info, &manager);
    if (setjmp(manager.jump)) {
        copy_message(error, error_capacity, manager.message);
        jpeg_destroy_compress(&info);
        free(buffer);
        return 1;
    }
    jpeg_create_compress(&info);
    unsigned char *destination = NULL;
    jpeg_mem_dest(&info, &destination, &buffer_size);
    info.image_width = (JDIMENSION)width;
    info.image_height = (JDIMENSION)height;
    info.input_components = components;
    info.in_color_space = components == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&info);
    jpeg_set_quality(&info, quality, TRUE);
    jpeg_start_compress(&info, TRUE);
    const size_t stride = (size_t)width * (size_t)components;
    while (info.next_scanline < info.image_height) {
        JSAMPROW rows[1] = {(JSAMPROW)(pixels + info.next_scanline * stride)};
        jpeg_write_scanlines(&info, rows, 1);
    }
    jpeg_finish_compress(&info);
    buffer = destination;
    jpeg_destroy_compress(&info);
    *output = buffer;
    *output_size = buffer_size;
    return 0;
}

// MARK: - PNG
// libpng's simplified API (png_image) catches its own longjmp internally and reports failures in
// png_image.message, so no setjmp is needed here.

int ic_probe_png(const unsigned char *data, size_t size, int *width, int *height, int *components,
                 char *error, size_t error_capacity) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&image, data, size)) {
        copy_message(error, error_capacity, image.message);
        png_image_free(&image);
        return 1;
    }
    *width = (int)image.width;
    *height = (int)image.height;
    *components = (int)PNG_IMAGE_PIXEL_CHANNELS(image.format);
    png_image_free(&image);
    return 0;
}

int ic_decode_png(const unsigned char *data, size_t size,
                  unsigned char **pixels, int *width, int *height,
                  char *error, size_t error_capacity) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&image, data, size)) {
        copy_message(error, error_capacity, image.message);
        png_image_free(&image);
        return 1;
    }
    image.format = PNG_FORMAT_RGB;
    unsigned char *buffer = malloc(PNG_IMAGE_SIZE(image));
    if (buffer == NULL) {
        copy_message(error, error_capacity, "out of memory");
        png_image_free(&image);
        return 2;
    }
    png_color black = {0, 0, 0};
    if (!png_image_finish_read(&image, &black, buffer, 0, NULL)) {
        copy_message(error, error_capacity, image.message);
        free(buffer);
        png_image_free(&image);
        return 1;
    }
    *pixels = buffer;
    *width = (int)image.width;
    *height = (int)image.height;
    return 0;
}

int ic_encode_png(const unsigned char *pixels, int width, int height, int components,
                  unsigned char **output, size_t *output_size,
                  char *error, size_t error_capacity) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)width;
    image.height = (png_uint_32)height;
    switch (components) {
    case 1: image.format = PNG_FORMAT_GRAY; break;
    case 3: image.format = PNG_FORMAT_RGB; break;
    case 4: image.format = PNG_FORMAT_RGBA; break;
    default:
        copy_message(error, error_capacity, "PNG encoding needs 1, 3 or 4 components");
        return 4;
    }
    png_alloc_size_t size = 0;
    // First call measures, second call writes.
    if (!png_image_write_to_memory(&image, NULL, &size, 0, pixels, 0, NULL)) {
        copy_message(error, error_capacity, image.message);
        png_image_free(&image);
        return 1;
    }
    unsigned char *buffer = malloc(size);
    if (buffer == NULL) {
        copy_message(error, error_capacity, "out of memory");
        return 2;
    }
    if (!png_image_write_to_memory(&image, buffer, &size, 0, pixels, 0, NULL)) {
        copy_message(error, error_capacity, image.message);
        free(buffer);
        png_image_free(&image);
        return 1;
    }
    *output = buffer;
    *output_size = size;
    return 0;
}

void ic_free(void *buffer) { free(buffer); }
