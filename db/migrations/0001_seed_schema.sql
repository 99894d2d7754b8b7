-- 0001: the schema exactly as the original instruction (EXECUTOR-STEP-REWARD-001, step 1) defines it.
-- Every name, type and default is the seed's, so a database where the seed's SQL already ran by hand
-- is left as it is (IF NOT EXISTS) and this migration is recorded as its baseline.
-- Immutable: later changes go into later migrations.

-- Step execution log with reward placeholders
CREATE TABLE IF NOT EXISTS public.jr_step_rewards (
    id SERIAL PRIMARY KEY,
    task_id INTEGER NOT NULL,
    step_number INTEGER NOT NULL,
    step_type VARCHAR(30) NOT NULL,
    target_file VARCHAR(500),
    step_content_hash VARCHAR(64),
    execution_result VARCHAR(20) DEFAULT 'pending',
    implicit_reward FLOAT,
    verified_outcome VARCHAR(20),
    retry_decision VARCHAR(20),
    execution_time_ms INTEGER,
    error_detail TEXT,
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW(),
    UNIQUE(task_id, step_number)
);

-- Exploration tracking for curiosity-driven task selection
CREATE TABLE IF NOT EXISTS public.jr_exploration_log (
    id SERIAL PRIMARY KEY,
    jr_type VARCHAR(50) NOT NULL,
    task_type VARCHAR(100) NOT NULL,
    novelty_score FLOAT,
    curiosity_bonus FLOAT,
    task_outcome VARCHAR(20),
    created_at TIMESTAMP DEFAULT NOW()
);

-- Indexes
CREATE INDEX IF NOT EXISTS idx_step_rewards_task ON public.jr_step_rewards(task_id);
CREATE INDEX IF NOT EXISTS idx_step_rewards_type ON public.jr_step_rewards(step_type);
CREATE INDEX IF NOT EXISTS idx_step_rewards_outcome ON public.jr_step_rewards(execution_result);
CREATE INDEX IF NOT EXISTS idx_exploration_jr ON public.jr_exploration_log(jr_type, created_at);
