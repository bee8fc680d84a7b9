// libjpeg needs <stdio.h> (FILE) and <stddef.h> before its own header.
#include <stddef.h>
#include <stdio.h>
#include <jpeglib.h>
