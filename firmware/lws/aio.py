"""Running the service loop as an asyncio task."""
import asyncio


async def serve(ctx, idle_ms=5):
    """Serve beside the application's other tasks until ctx.stop()."""
    try:
        while not ctx._stop:
            await asyncio.sleep_ms(0 if ctx.service(0) else idle_ms)
    finally:
        ctx.close()
