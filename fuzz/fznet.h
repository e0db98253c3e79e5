/*
 * fznet.h - helpers for fuzz targets that drive the real network code over
 * loopback TCP inside the fuzzer process.
 *
 * One libuv loop lives for the whole fuzzing run. An iteration opens a
 * plain blocking-free client socket to a listener on that loop, sends the
 * fuzz input, half-closes, reads whatever comes back until EOF, and then
 * waits until the loop is back to the handles it had before the iteration
 * (fznet_settle): so every connection, timer and thread-pool job an input
 * started is finished before the next input runs, and LeakSanitizer sees a
 * quiet heap between inputs.
 *
 * Every wait has a deadline. A loop that does not settle after the peer has
 * gone is a resource leak in the code under test (a connection that never
 * closes): fznet_settle then aborts, so libFuzzer keeps the input.
 */
#ifndef LXCM_FUZZ_FZNET_H
#define LXCM_FUZZ_FZNET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

/*
 * Every listener of a fuzz target binds this address, and every client
 * connects to it: other processes on the machine (tests running in
 * parallel, agents retrying a port their server had) use 127.0.0.1, so no
 * stray connection ever reaches a fuzz target.
 */
#define FZNET_HOST "127.77.0.1"

/* The loop shared by every iteration (created on first use). */
uv_loop_t *fznet_loop(void);

/* The number of handles on the loop, closing ones included. */
size_t fznet_handle_count(void);

/* Records the current handle count as the idle state fznet_settle waits for. */
void fznet_mark_baseline(void);

/*
 * A non-blocking client socket connected to FZNET_HOST:port, or -1. A
 * connect that fails for want of a local port (thousands of connections a
 * second leave sockets in TIME_WAIT) is retried for a while.
 */
int fznet_connect(int port);

/*
 * Closes a socket from fznet_connect with a reset instead of a FIN, so it
 * does not sit in TIME_WAIT and use up the local ports. Call it once the
 * peer has said everything (after fznet_drain).
 */
void fznet_close(int fd);

/*
 * Sends len bytes on fd, running the loop whenever the socket is full.
 * Gives up (without error) when the peer closes or after ms milliseconds.
 * Returns the bytes sent.
 */
size_t fznet_write(int fd, const void *data, size_t len, uint64_t ms);

/* fznet_write, then shuts down the write side (the peer sees EOF). */
size_t fznet_send(int fd, const void *data, size_t len, uint64_t ms);

/*
 * Reads and discards what the peer sends until EOF, an error or ms
 * milliseconds, running the loop meanwhile. When out is not NULL, up to
 * outlen bytes of the reply are kept there and *outn says how many.
 * Returns 0 at EOF, -1 on timeout.
 */
int fznet_drain(int fd, uint64_t ms, uint8_t *out, size_t outlen, size_t *outn);

/*
 * Reads what is there on fd (at most len bytes), running the loop until
 * something comes or ms milliseconds pass. Returns the bytes read, 0 at EOF
 * (or a reset), -1 on timeout.
 */
ssize_t fznet_recv(int fd, void *buf, size_t len, uint64_t ms);

/* Runs the loop until done(arg) is true or ms milliseconds passed; 0 or -1. */
int fznet_run_until(int (*done)(void *), void *arg, uint64_t ms);

/*
 * Runs the loop until it holds only the baseline handles and no request
 * (thread-pool job, connect, write) is in flight. Aborts after ms
 * milliseconds with a message naming what is left: see the header comment.
 */
void fznet_settle(uint64_t ms, const char *what);

/* Opens a TCP listener on FZNET_HOST, port 0; returns the port or < 0. */
int fznet_listen(uv_tcp_t *listener, uv_connection_cb cb, void *data);

#endif
