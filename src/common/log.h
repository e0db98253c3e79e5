/*
 * log.h - one line per event on stderr: time, level, function, message.
 * Daemon code logs once, where a failure is understood (STYLE.md rule 3).
 */
#ifndef LXCM_LOG_H
#define LXCM_LOG_H

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

void log_set_level(enum log_level level);
void log_set_prefix(const char *prefix);
void log_msg(enum log_level level, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define LOG_DEBUG(...) log_msg(LOG_LEVEL_DEBUG, __func__, __VA_ARGS__)
#define LOG_INFO(...) log_msg(LOG_LEVEL_INFO, __func__, __VA_ARGS__)
#define LOG_WARN(...) log_msg(LOG_LEVEL_WARN, __func__, __VA_ARGS__)
#define LOG_ERROR(...) log_msg(LOG_LEVEL_ERROR, __func__, __VA_ARGS__)

#endif
