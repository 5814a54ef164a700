#ifndef CZOOKEEPER_H
#define CZOOKEEPER_H
/* The synchronous API is only declared with THREADED; we use the async API but
   the _mt library is built threaded, so keep the declarations consistent. */
#ifndef THREADED
#define THREADED 1
#endif
#include <zookeeper/zookeeper.h>
#endif
