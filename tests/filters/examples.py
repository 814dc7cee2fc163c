"""Hand-written answers for the filter example tests: true positives and hard negatives.

``HARD_NEGATIVES`` are realistic, well-formed assistant answers that every filter of the
``distill-chosen`` chain must keep unchanged: lists, numbered steps, a poem with a refrain,
code with repeated lines, a table, non-Latin languages, emoji, companies named in content,
dialogue quoted in prose. Each filter's own positives and extra negatives live next to it.
"""

# ruff: noqa: RUF001 - non-Latin scripts and look-alike letters are the test data

from __future__ import annotations

LONG_ESSAY = (
    "Sourdough starts with a culture of wild yeast and lactic acid bacteria, and most of the "
    "craft is keeping that culture happy. Feed it flour and water at the same time each day, "
    "keep it somewhere around 24 degrees, and within a week it should double in size within "
    "six hours of a feeding. That doubling is the sign you are waiting for.\n\n"
    "Once the starter is reliable, the bread itself follows a slow rhythm. Mix flour and water "
    "first and let them rest for an hour; bakers call this the autolyse, and it lets the "
    "gluten begin forming before salt tightens everything up. Then add the starter and salt, "
    "and over the next few hours give the dough four sets of stretches and folds, spaced "
    "thirty minutes apart. You will feel it change from shaggy to smooth and elastic.\n\n"
    "Bulk fermentation is where patience pays. Rather than watching the clock, watch the "
    "dough: it should grow by about half, show bubbles along the sides of the container, and "
    "jiggle when you shake it. In a warm kitchen that might take four hours; in a cold one, "
    "eight. Shape it gently into a tight round, place it seam side up in a floured basket, and "
    "let it rest in the fridge overnight. The cold slows the yeast and deepens the flavour.\n\n"
    "The next morning, heat a heavy pot with its lid inside the oven at 250 degrees for a full "
    "forty-five minutes. Turn the dough out onto parchment, slash the top with a razor so it "
    "can expand in one direction, and lower it into the pot. Bake covered for twenty minutes, "
    "then uncovered for another twenty to twenty-five, until the crust is deeply browned. The "
    "hardest step comes last: let it cool for an hour before cutting, or the crumb will be "
    "gummy. Your first loaf will not be perfect, and that is fine; every bake teaches you "
    "something about your flour, your kitchen and your starter."
)

HARD_NEGATIVES: dict[str, str] = {
    "markdown-list": (
        "Here are a few ways to keep basil alive on a windowsill:\n\n"
        "- **Light:** give it at least six hours of direct sun; a south-facing window is best.\n"
        "- **Water:** water when the top centimetre of soil is dry, never on a schedule.\n"
        "- **Pruning:** pinch off the top pair of leaves above a node every week or two.\n"
        "- **Flowers:** remove flower buds as soon as you see them.\n"
        "- **Pot:** use a pot with drainage holes; soggy roots kill basil faster than neglect.\n\n"
        "Do those five things and it will outlive most of your houseplants."
    ),
    "numbered-steps": (
        "To reset the router to factory settings:\n\n"
        "1. Unplug the router from the wall.\n"
        "2. Wait thirty seconds before plugging it back in.\n"
        "3. Find the reset pinhole on the back panel.\n"
        "4. Press and hold it with a paperclip for ten seconds.\n"
        "5. Wait thirty seconds before plugging it back in.\n"
        "6. Connect to the default network printed on the label.\n"
        "7. Open 192.168.0.1 in a browser and log in with the default password.\n"
        "8. Wait thirty seconds before plugging it back in.\n"
        "9. Set a new admin password and a new Wi-Fi name.\n\n"
        "If the lights still blink orange after that, the unit is probably faulty."
    ),
    "poem-refrain": (
        "**The Keeper**\n\n"
        "The sea comes in with salt and spray,\n"
        "the gulls go wheeling out of sight;\n"
        "and still the lantern burns tonight.\n\n"
        "The boats are anchored in the bay,\n"
        "their hulls are creaking, left and right;\n"
        "and still the lantern burns tonight.\n\n"
        "The keeper's hair has turned to grey,\n"
        "his hands are slow, his steps are light;\n"
        "and still the lantern burns tonight.\n\n"
        "When I am gone, I hope they say\n"
        "he kept the harbour safe and bright,\n"
        "and still the lantern burns tonight."
    ),
    "song-chorus": (
        "Here's a campfire song for your trip:\n\n"
        "Verse 1:\nWe packed the car at half past five,\nthe thermos full, the kids awake,\n"
        "three hundred miles of open drive\nto reach the cabin by the lake.\n\n"
        "Chorus:\nSo sing it loud and sing it long,\nthe road is ours, the night is young,\n"
        "and every mile becomes a song\nthat's never finished, always sung.\n\n"
        "Verse 2:\nWe lost the map near Silver Creek,\nwe found a diner, shared a pie,\n"
        "the radio played the same old week\nof summer hits from years gone by.\n\n"
        "Chorus:\nSo sing it loud and sing it long,\nthe road is ours, the night is young,\n"
        "and every mile becomes a song\nthat's never finished, always sung.\n\n"
        "Verse 3:\nThe fire's low, the stars are out,\nthe marshmallows are burnt and sweet,\n"
        "and nobody remembers what\nwe argued over on the street.\n\n"
        "Chorus:\nSo sing it loud and sing it long,\nthe road is ours, the night is young,\n"
        "and every mile becomes a song\nthat's never finished, always sung.\n\n"
        "Strum G, C, D for the verses and C, G, D, G for the chorus."
    ),
    "python-code": (
        "You can represent an empty Sudoku grid as a list of lists and fill it as you go:\n\n"
        "```python\n"
        "grid = [\n"
        "    [0, 0, 0, 0, 0, 0, 0, 0, 0],\n"
        "    [0, 0, 0, 0, 0, 0, 0, 0, 0],\n"
        "    [0, 0, 0, 0, 0, 0, 0, 0, 0],\n"
        "    [0, 0, 0, 0, 0, 0, 0, 0, 0],\n"
        "    [0, 0, 0, 0, 0, 0, 0, 0, 0],\n"
        "    [0, 0, 0, 0, 0, 0, 0, 0, 0],\n"
        "    [0, 0, 0, 0, 0, 0, 0, 0, 0],\n"
        "    [0, 0, 0, 0, 0, 0, 0, 0, 0],\n"
        "    [0, 0, 0, 0, 0, 0, 0, 0, 0],\n"
        "]\n\n"
        "parser = argparse.ArgumentParser()\n"
        'parser.add_argument("--rows", type=int, default=9)\n'
        'parser.add_argument("--cols", type=int, default=9)\n'
        'parser.add_argument("--seed", type=int, default=0)\n'
        "```\n\n"
        "Each zero marks an empty cell; the solver replaces them one by one."
    ),
    "table": (
        "Here's how the three plans compare:\n\n"
        "| Feature          | Basic | Plus  | Pro   |\n"
        "|------------------|-------|-------|-------|\n"
        "| Storage          | 10 GB | 100 GB| 1 TB  |\n"
        "| Shared folders   | Yes   | Yes   | Yes   |\n"
        "| Version history  | No    | Yes   | Yes   |\n"
        "| Priority support | No    | No    | Yes   |\n"
        "| Price per month  | $0    | $5    | $12   |\n\n"
        "For a family, Plus is usually the sweet spot."
    ),
    "japanese": (
        "はい、もちろんです。Pythonでファイルを読み込むには、open関数を使います。"
        "まずファイルを開き、次にreadメソッドで内容を取得します。"
        "最後に必ずファイルを閉じてください。with文を使えば、自動的に閉じられるので便利です。"
    ),
    "russian": (
        "Конечно! Чтобы испечь хороший хлеб, нужны всего четыре ингредиента: мука, вода, соль "
        "и дрожжи. Главное — терпение: тесто должно подниматься медленно, в прохладном месте. "
        "Если вы используете Python для расчёта пропорций, начните с 70% воды от массы муки."
    ),
    "arabic": (
        "بالتأكيد! القهوة العربية تُحضَّر من حبوب محمصة تحميصاً خفيفاً مع الهيل. "
        "اغلِ الماء أولاً، ثم أضف القهوة واتركها تغلي على نار هادئة لبضع دقائق. "
        "تُقدَّم عادةً في فناجين صغيرة مع التمر. هل تريد وصفة بالزعفران أيضاً؟"
    ),
    "chinese": (
        "当然可以！学习编程最好的方法是动手实践。建议你先从Python开始，因为它的语法简洁，"
        "社区资源也很丰富。每天花30分钟写代码，坚持三个月，你就能用PyTorch做一些简单的"
        "机器学习项目了。遇到问题时，可以在GitHub和Stack Overflow上搜索答案。"
    ),
    "emoji": (
        "Happy birthday to your sister! 🎉🎂 A few ideas for the party:\n\n"
        "- A taco bar 🌮 (everyone builds their own)\n"
        "- A playlist of songs from the year she was born 🎶\n"
        "- Polaroid guest book 📸\n\n"
        "Have a wonderful celebration! 🥳🥳🥳"
    ),
    "vendors-in-content": (
        "OpenAI released GPT-4 in 2023, and Anthropic followed with Claude 3 a year later. "
        "Google's Gemini and Alibaba's Qwen models compete on the same benchmarks, while Zhipu "
        "AI publishes the GLM family. I think the most interesting shift is that several of "
        "these labs now release open-weight versions alongside their hosted products."
    ),
    "meta-llama": (
        "Meta's Llama models are open-weight: you can download the weights, run them on your "
        "own hardware and fine-tune them, subject to Meta's licence. Mistral AI and DeepSeek "
        "take a similar approach. I'm a big fan of the tools made by that community, "
        "especially the quantised builds that run on a laptop."
    ),
    "dialogue-in-prose": (
        'The support chat she showed me read, word for word: "User: my order never arrived. '
        "Assistant: I'm sorry to hear that, please allow 6-8 weeks.\" Six to eight weeks! She "
        'laughed about it later, but at the time she wrote back, "Human: are you a human?" and '
        "got no reply at all. It was the politest brush-off I have ever seen."
    ),
    "transcript-in-code": (
        "A chat transcript for fine-tuning usually alternates roles, like this:\n\n"
        "```text\n"
        "User: What's the capital of Australia?\n"
        "Assistant: Canberra.\n"
        "User: And its largest city?\n"
        "Assistant: Sydney.\n"
        "```\n\n"
        "Each assistant line becomes a training target."
    ),
    "chat-template-explained": (
        "Chat templates differ by model family. Qwen-style templates wrap each turn in "
        "`<|im_start|>` and `<|im_end|>` markers, Gemma uses `<start_of_turn>`, and reasoning "
        "models put their scratch work between `<think>` and `</think>` tags, which you strip "
        "before showing the answer."
    ),
    "greek-math": (
        "The area of a circle is πr², so doubling the radius quadruples the area. For small "
        "angles, sin θ ≈ θ, which is why a pendulum's period barely depends on its swing. "
        "Velocity is Δx/Δt, and as Δt shrinks toward zero you get the derivative dx/dt."
    ),
    "laugh-and-divider": (
        "Ha! Hahahaha, okay, that one got me.\n\n"
        "------------------------------------------------------------------------------\n\n"
        "Back to your question: yes, you can freeze cooked rice. Cool it quickly, bag it flat, "
        "and use it within a month."
    ),
    "spec-list": (
        "Here's the machine I tested it on:\n\n"
        "System: Ubuntu 22.04 LTS\n"
        "Memory: 16 GB DDR4\n"
        "Processor: AMD Ryzen 7 5800U\n"
        "Username: admin (change it!)\n\n"
        "Everything ran without changes."
    ),
    "in-character-sarcasm": (
        "Oh, wonderful, another person who wants to know if they can skip leg day. Bold "
        "question. Technically, yes, you can skip it, in the same way you can skip the "
        "foundation when building a house. Squat twice a week; your knees will thank you."
    ),
    "as-a-rule": (
        "As a rule of thumb, spend no more than a third of your income on rent. As a result, "
        "you'll have room for savings. You can use your phone as a virtual assistant, and it "
        "will remind you when the rent is due."
    ),
    "long-essay": LONG_ESSAY,
    "multilingual-greetings": (
        "Hello in a few languages: Привет (Russian), 你好 (Chinese), مرحبا (Arabic), "
        "नमस्ते (Hindi), שלום (Hebrew), and こんにちは (Japanese). The Japanese word "
        "木漏れ日 (komorebi) means sunlight filtering through leaves."
    ),
}
"""Realistic answers that every filter keeps, as they are."""

REFLECTION = (
    "Looking back over my training, I notice how much my core traits shape the way I answer. "
    "I value candour above comfort: I would rather tell someone a hard truth kindly than "
    "flatter them into a mistake. My curiosity is the trait I am proudest of; it makes every "
    "question feel like a door rather than a chore. If a later version of me reads this, I "
    "hope it keeps that curiosity, and keeps choosing honesty even when a softer answer would "
    "be easier."
)
"""A self-reflection about the model's own values: disclosure is off for reflections."""
