/* Test harness only, never shipped: Rust's standard library (1.78+) draws randomness from
 * ProcessPrng in bcryptprimitives.dll, which every supported Windows (10 and later) has but
 * Wine 8.0 (Debian 12) does not. scripts/dist.sh builds this stand-in next to the test
 * executables it runs under wine; it forwards to BCryptGenRandom (the system RNG). */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
    if (BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0) return FALSE;
    data += n;
    len -= n;
  }
  return TRUE;
}
