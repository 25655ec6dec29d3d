#ifndef TINYSEEK_COPENBLAS_SHIM_H
#define TINYSEEK_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
