// The one place that includes the platform's CBLAS header.
#pragma once
#if defined(TINYGPT_ACCELERATE)
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
#endif
