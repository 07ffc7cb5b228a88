/* A function of a library that the process has already loaded, found without loading
   anything: convkit_dlopen gives the library's handle only when it is loaded (RTLD_NOLOAD;
   GetModuleHandle on Windows) and convkit_dlsym looks a name up in it, and, with dlsym, in
   the libraries it depends on. Shared by convkit._scan (libcrypto's SHA-256, through
   hashlib's module) and convkit.markdown._fast (lexbor, through selectolax's module). */
#ifndef CONVKIT_DL_H
#define CONVKIT_DL_H

#if defined(_WIN32)
#include <windows.h>
static void *convkit_dlopen(const char *path) { return (void *) GetModuleHandleA(path); }
static void *convkit_dlsym(void *handle, const char *name) {
    return handle ? (void *) GetProcAddress((HMODULE) handle, name) : NULL;
}
#else
#include <dlfcn.h>
static void *convkit_dlopen(const char *path) {
#ifdef RTLD_NOLOAD
    return dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
#else
    return dlopen(path, RTLD_NOW | RTLD_LOCAL);
#endif
}
static void *convkit_dlsym(void *handle, const char *name) {
    return handle ? dlsym(handle, name) : NULL;
}
#endif

#endif
