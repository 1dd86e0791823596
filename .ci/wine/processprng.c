/*
 * bcryptprimitives.dll for Wine 8, which lacks ProcessPrng: Go's runtime
 * calls it at start since Go 1.24 and exits without it. It fills the
 * buffer from RtlGenRandom (advapi32's SystemFunction036), which Wine has.
 * Built by .ci/run with Debian's mingw-w64 into the Wine prefix's system32.
 */
#include <windows.h>

typedef BOOLEAN(WINAPI *gen_random)(PVOID, ULONG);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	static gen_random fill;
	if (!fill)
		fill = (gen_random)GetProcAddress(LoadLibraryA("advapi32.dll"), "SystemFunction036");
	if (!fill)
		return FALSE;
	while (len > 0) {
		ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
		if (!fill(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
