#include "zkshim.h"
