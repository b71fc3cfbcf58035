#include "drop_reason.h"

const char *const ep_drop_reason_names[EP_DROP__COUNT] = {
#define EP_DROP_NAME(name, str) [EP_DROP_##name] = str,
	EP_DROP_REASONS(EP_DROP_NAME)
#undef EP_DROP_NAME
};
