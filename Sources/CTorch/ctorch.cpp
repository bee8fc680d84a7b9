#include "ctorch.h"

#include <torch/version.h>

const char *ctorch_version(void) { return TORCH_VERSION; }
