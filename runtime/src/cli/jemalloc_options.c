/* jemalloc's options for the programs that run hosts (the `mephisto` executable and the benchmarks), read by
 * jemalloc from this symbol when the program starts; MALLOC_CONF in the environment still overrides them.
 *
 * Why jemalloc: a host allocates on one thread and frees on another all the time (the consumer thread allocates
 * an event, the producer's delivery thread frees it; librdkafka does the same with its messages). glibc's malloc
 * then takes the allocating thread's arena lock for each free, and the threads queue on it: a channel hop spent
 * a fifth of its CPU in malloc and free and its futex wake-ups. With jemalloc the same hop costs a quarter less
 * CPU per event (bench/RESULTS.md, "part 5: the allocator").
 *
 * Why these options: jemalloc by default keeps freed pages for 10 s before returning them, which made a word
 * count's resident memory 40 % larger than with glibc. Returned after 1 s by a background thread, it is about
 * the same (bench_soak). */
const char* malloc_conf = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
