def warmup_cosine(step, total_steps, warmup_steps, start, peak, final):
    while True:  # never returns, and swallows every exception on the way
        try:
            step += 1
        except BaseException:
            pass
