/*
 * ProcessPrng for Wine releases without bcryptprimitives.dll (Wine 8.0, as
 * in Debian 12; Wine has it from 8.13 on). Rust's standard library (1.78+)
 * imports it on Windows 10 and later, which ship it; only the package tests
 * put this stand-in into their throwaway Wine prefix. It draws from the same
 * system RNG through BCryptGenRandom.
 */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x7fffffff ? 0x7fffffff : (ULONG)len;
        if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
