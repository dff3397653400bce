/* SPDX-License-Identifier: Apache-2.0 */
/* A hash map from NUL-terminated strings to pointers (chained, grows at a
 * load factor of 1). Keys are copied; values are borrowed. Not
 * thread-safe. Iteration order is unspecified. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

struct al_map;

struct al_map *al_map_new(void);
/* Frees the map (not the values) and returns NULL; NULL-safe. */
struct al_map *al_map_free(struct al_map *m);
void *al_map_get(const struct al_map *m, const char *key);
/* Sets key to value (replacing); returns the previous value or NULL. */
void *al_map_put(struct al_map *m, const char *key, void *value);
/* Removes key; returns its value or NULL. */
void *al_map_remove(struct al_map *m, const char *key);
size_t al_map_size(const struct al_map *m);
/* Calls fn for every entry; fn returns true to remove the entry (after
 * which its value is the caller's to free). */
void al_map_sweep(struct al_map *m, bool (*fn)(const char *key, void *value, void *ud), void *ud);
